"""`export`: what an app needs, beside each other in the run folder, written atomically.

The files and their format are the export contract (`edgeseg.contract`): `model.tflite`,
`labels.txt` and `edgeseg.json`, the last two also embedded in the `.tflite`.
"""

from edgeseg.contract import write_export
from edgeseg.overlay import class_colors
from edgeseg.stages.base import PipelineState, StageOutcome


def apply(state: PipelineState, cfg, ctx) -> StageOutcome:
    """Writes the `.tflite`, labels and description to the run folder's top level."""
    colors = class_colors(ctx.num_classes, ctx.recipe.data.palette)
    record = write_export(ctx.run_dir, state.quantized(), ctx.class_names, colors, ctx.ignore_index, ctx.recipe.hash)
    return StageOutcome(state, record)
