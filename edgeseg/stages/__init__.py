"""The stages a recipe can list, by their YAML name.

Each stage module has `apply(state, settings, ctx) -> StageOutcome`; it orchestrates library code
(`edgeseg.training`, `edgeseg.distillation`, `edgeseg.quantization`, ...) and never imports another
stage. `STAGES` also says how to restore a completed stage's state from its folder for `--resume`
(`verify` and `export` have no restorer: they are quick, and always rerun) and which recipe
sections the stage reads besides its own settings, for its resume key.
"""

import json
from collections.abc import Callable
from typing import NamedTuple

from edgeseg.models.io import load_model
from edgeseg.stages import cluster, distill, export, prune, prune_channels, quantize, train, verify
from edgeseg.stages.base import PipelineState


def _restore_model(state: PipelineState, stage_dir) -> PipelineState:
    return PipelineState(model=load_model(stage_dir / "model.keras"), teacher=state.teacher)


def _restore_student(state: PipelineState, stage_dir) -> PipelineState:
    return PipelineState(model=load_model(stage_dir / "model.keras"), teacher=state.model)


def _restore_tflite(state: PipelineState, stage_dir) -> PipelineState:
    mode = json.loads((stage_dir / "record.json").read_text())["mode"]
    return PipelineState(
        model=state.model, teacher=state.teacher, tflite=(stage_dir / "model.tflite").read_bytes(), tflite_mode=mode
    )


class Stage(NamedTuple):
    apply: Callable
    restore: Callable | None
    reads: tuple[str, ...]
    """Recipe sections the stage reads besides its settings (`seed`, `data`, `student`, `distribute`)."""


TRAINING_READS = ("seed", "data", "distribute")
STAGES = {
    "train": Stage(train.apply, _restore_model, TRAINING_READS),
    "distill": Stage(distill.apply, _restore_student, (*TRAINING_READS, "student")),
    "prune_channels": Stage(prune_channels.apply, _restore_model, TRAINING_READS),
    "prune": Stage(prune.apply, _restore_model, TRAINING_READS),
    "cluster": Stage(cluster.apply, _restore_model, TRAINING_READS),
    "quantize": Stage(quantize.apply, _restore_tflite, ("seed", "data")),
    "verify": Stage(verify.apply, None, ("seed", "data")),
    "export": Stage(export.apply, None, ("data",)),
}
