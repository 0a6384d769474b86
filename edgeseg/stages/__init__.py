"""The stages a recipe can list, by their YAML name. Each is `apply(state, cfg, ctx) -> StageOutcome`.

`RESTORERS` rebuild the state after a completed stage from its folder, for `--resume`; `verify`
and `export` have none, since they are quick and their output depends on the files they write.
"""

import json

from edgeseg.models.io import load_model
from edgeseg.stages import cluster, distill, export, prune, quantize, train, verify
from edgeseg.stages.base import PipelineState

STAGES = {
    "train": train.apply,
    "distill": distill.apply,
    "prune": prune.apply,
    "cluster": cluster.apply,
    "quantize": quantize.apply,
    "verify": verify.apply,
    "export": export.apply,
}


def _restore_model(state: PipelineState, stage_dir) -> PipelineState:
    return PipelineState(model=load_model(stage_dir / "model.keras"), teacher=state.teacher)


def _restore_student(state: PipelineState, stage_dir) -> PipelineState:
    return PipelineState(model=load_model(stage_dir / "model.keras"), teacher=state.model)


def _restore_tflite(state: PipelineState, stage_dir) -> PipelineState:
    mode = json.loads((stage_dir / "record.json").read_text())["mode"]
    return PipelineState(model=state.model, teacher=state.teacher, tflite=(stage_dir / "model.tflite").read_bytes(),
                         tflite_mode=mode)


RESTORERS = {
    "train": _restore_model,
    "distill": _restore_student,
    "prune": _restore_model,
    "cluster": _restore_model,
    "quantize": _restore_tflite,
}
