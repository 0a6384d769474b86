"""`prune`: magnitude pruning with TF-MOT, with a schedule that reaches its target within the stage.

TF-MOT's default `frequency=100` silently ends a short fine-tune with no sparsity at all, so the
schedule is derived from the stage's real step count and the result is measured after stripping.
"""

from edgeseg._keras import tfmot
from edgeseg.data.pipeline import steps_per_epoch
from edgeseg.errors import StageError
from edgeseg.models.copying import copy_model
from edgeseg.stages.base import PipelineState, StageOutcome, save_stage_model
from edgeseg.stages.compressible import compressible_kernels, first_conv_name, is_compressible, sparsity
from edgeseg.training import fit_segmentation

SPARSITY_TOLERANCE = 0.01


def pruning_schedule(target_sparsity: float, total_steps: int):
    """Polynomial ramp from 0 to the target over the first 2/3 of training, ending on an update step.

    Steps run 0..total_steps-1; with fewer than 3 the target is applied at once.
    """
    if total_steps < 3:
        return tfmot.sparsity.keras.ConstantSparsity(target_sparsity, begin_step=0, frequency=1)
    frequency = max(1, (2 * total_steps // 3) // 10)
    end_step = max(frequency, (2 * total_steps // 3) // frequency * frequency)
    return tfmot.sparsity.keras.PolynomialDecay(0.0, target_sparsity, begin_step=0, end_step=end_step, frequency=frequency)


def apply(state: PipelineState, cfg, ctx) -> StageOutcome:
    """Prunes a copy of `state.model` to `cfg.target_sparsity`, fine-tunes, strips the wrappers."""
    total_steps = cfg.epochs * steps_per_epoch(ctx.train, ctx.batch_size)
    schedule = pruning_schedule(cfg.target_sparsity, total_steps)
    stem = first_conv_name(state.model)

    def wrap(layer):
        if is_compressible(layer, stem, ctx.num_classes):
            return tfmot.sparsity.keras.prune_low_magnitude(layer, pruning_schedule=schedule)
        return layer

    wrapped = copy_model(state.model, wrap)
    fit = fit_segmentation(
        wrapped, wrapped, cfg, ctx, keep_best=False, callbacks=[tfmot.sparsity.keras.UpdatePruningStep()],
    )
    model = tfmot.sparsity.keras.strip_pruning(wrapped)
    reached = sparsity(compressible_kernels(model, ctx.num_classes))
    record = {**fit, **save_stage_model(model, ctx), "sparsity": reached, "target_sparsity": cfg.target_sparsity}
    if reached < cfg.target_sparsity - SPARSITY_TOLERANCE:
        raise StageError(
            f"prune: sparsity reached {reached:.3f}, below target_sparsity {cfg.target_sparsity} "
            f"after {total_steps} steps; raise stages.prune.epochs"
        )
    return StageOutcome(PipelineState(model=model, teacher=state.teacher), record)
