"""`train`: fit the current model on the labels, keeping its best validation epoch."""

from edgeseg.models.copying import copy_model
from edgeseg.stages.base import PipelineState, StageOutcome, save_stage_model
from edgeseg.training import fit_segmentation


def apply(state: PipelineState, cfg, ctx) -> StageOutcome:
    """Trains a copy of `state.model` on the labels (`label_loss`); the input model is left as it was."""
    model = copy_model(state.model)
    fit = fit_segmentation(model, model, cfg, ctx)
    record = {**fit, **save_stage_model(model, ctx)}
    return StageOutcome(PipelineState(model=model, teacher=state.teacher), record)
