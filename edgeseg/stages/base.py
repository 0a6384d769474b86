"""What every stage receives and returns: `apply(state, cfg, ctx) -> StageOutcome`."""

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgeseg.data.split import SegmentationSplit
from edgeseg.errors import StageError
from edgeseg.files import file_sizes
from edgeseg.models.io import save_model
from edgeseg.recipe import Recipe


@dataclass(frozen=True)
class PipelineState:
    """The current model, the teacher once `distill` has replaced it, and the `.tflite` after `quantize`."""

    model: Any
    """A tf_keras model (the teacher, before `distill`, may also be a `.tflite` or SavedModel that can only teach)."""
    teacher: Any = None
    tflite: bytes | None = None
    tflite_mode: str | None = None
    """How `tflite` was quantized: the recipe's mode, or the one `mode: auto` chose."""

    def quantized(self) -> bytes:
        """The `.tflite` that `quantize` made, for the stages that read it."""
        if self.tflite is None:
            raise StageError("this stage reads the .tflite, so a 'quantize' stage must come first")
        return self.tflite


@dataclass(frozen=True)
class StageContext:
    """Data and settings shared by all stages of one run."""

    train: SegmentationSplit
    val: SegmentationSplit
    class_names: list[str]
    batch_size: int
    augment: Any
    seed: int
    run_dir: Path
    recipe: Recipe
    """The whole recipe, for the sections every stage may read (`data`, `student`); a stage reads its
    own settings from the settings it is given, never another stage's section."""
    stage_dir: Path = Path(".")
    stage_key: str = ""
    """The hash of what the stage depends on; a training checkpoint is resumed only under the same key."""
    strategy: Any = None
    """The tf.distribute strategy the training stages build and fit under; None: TensorFlow's default."""
    unlabeled: object = None
    """`data.unlabeled`'s images [N, H, W, 3] uint8, for `distill`; None without that folder."""

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def ignore_index(self) -> int:
        return self.train.ignore_index


@dataclass(frozen=True)
class StageOutcome:
    """The state after the stage, and its record for the report (metrics, sizes, artifact)."""

    state: PipelineState
    record: dict = field(default_factory=dict)


def save_stage_model(model, ctx: StageContext) -> dict:
    """Saves a stage's Keras model as `<stage_dir>/model.keras`; returns the record's artifact fields."""
    path = save_model(model, ctx.stage_dir / "model.keras")
    return {"artifact": str(path.relative_to(ctx.run_dir)), "params": int(model.count_params()), **file_sizes(path)}
