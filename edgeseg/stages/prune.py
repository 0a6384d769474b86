"""`prune`: magnitude pruning with TF-MOT, with a schedule that reaches its target within the stage.

TF-MOT's default `frequency=100` silently ends a short fine-tune with no sparsity at all, so the
schedule is derived from the stage's real step count and the result is measured after stripping.
"""

from edgeseg._keras import tfmot
from edgeseg.data.pipeline import steps_per_epoch
from edgeseg.distillation import fine_tune_loss, fine_tune_trainer
from edgeseg.errors import StageError
from edgeseg.kernels import kernels_of, layer_sparsity, m_by_n_violations, sparsity
from edgeseg.layer_selection import select_layers
from edgeseg.models.copying import copy_model
from edgeseg.stages.base import PipelineState, StageOutcome, save_stage_model
from edgeseg.training import fit_segmentation

SPARSITY_TOLERANCE = 0.01


def pruning_schedule(target_sparsity: float, total_steps: int, kind: str = "polynomial"):
    """The target reached within `total_steps` (steps run 0..total_steps-1), ending on an update step.

    `polynomial` ramps from 0 over the first 2/3 of training; `constant`, or fewer than 3 steps,
    applies the target at once.
    """
    if kind == "constant" or total_steps < 3:
        return tfmot.sparsity.keras.ConstantSparsity(target_sparsity, begin_step=0, frequency=1)
    frequency = max(1, (2 * total_steps // 3) // 10)
    end_step = max(frequency, (2 * total_steps // 3) // frequency * frequency)
    return tfmot.sparsity.keras.PolynomialDecay(0.0, target_sparsity, begin_step=0, end_step=end_step, frequency=frequency)


def apply(state: PipelineState, cfg, ctx) -> StageOutcome:
    """Prunes a copy of `state.model` to `cfg.target_sparsity`, fine-tunes, strips the wrappers."""
    total_steps = cfg.epochs * steps_per_epoch(ctx.train, ctx.batch_size)
    schedule = pruning_schedule(cfg.target_sparsity, total_steps, cfg.sparsity_schedule)
    names = select_layers(state.model, ctx.num_classes, cfg, cfg.m_by_n, stage="prune")
    if not names:
        raise StageError(f"prune: no layer selected by stages.prune.layers={cfg.layers}, skip_layers={cfg.skip_layers}")
    options = {"pruning_schedule": schedule, **({"sparsity_m_by_n": tuple(cfg.m_by_n)} if cfg.m_by_n else {})}

    def wrap(layer):
        return tfmot.sparsity.keras.prune_low_magnitude(layer, **options) if layer.name in names else layer

    wrapped = copy_model(state.model, wrap)
    fit = fit_segmentation(
        fine_tune_trainer(wrapped, state.teacher, cfg.distill, ctx.ignore_index, "prune", cfg.lovasz_weight),
        wrapped,
        cfg,
        ctx,
        keep_best=False,
        callbacks=[tfmot.sparsity.keras.UpdatePruningStep()],
    )
    # TF-MOT's strip reuses the wrapped model's layers, which then belong to two graphs and give
    # `layer.output` of the wrong one; a copy's layers belong to the returned model alone.
    model = copy_model(tfmot.sparsity.keras.strip_pruning(wrapped))
    kernels = kernels_of(model, names)
    reached = sparsity(kernels)
    record = {
        **fit,
        **save_stage_model(model, ctx),
        "sparsity": reached,
        "target_sparsity": cfg.target_sparsity,
        "m_by_n": cfg.m_by_n,
        "layers": len(names),
        "layer_sparsity": layer_sparsity(kernels),
        "fine_tune_loss": fine_tune_loss(cfg.distill, lovasz_weight=cfg.lovasz_weight),
    }
    if reached < cfg.target_sparsity - SPARSITY_TOLERANCE:
        raise StageError(
            f"prune: sparsity reached {reached:.3f}, below target_sparsity {cfg.target_sparsity} "
            f"after {total_steps} steps; raise stages.prune.epochs"
        )
    broken = m_by_n_violations(kernels, cfg.m_by_n) if cfg.m_by_n else []
    if broken:
        raise StageError(f"prune: {len(broken)} kernels break {cfg.m_by_n[0]}:{cfg.m_by_n[1]} sparsity (e.g. {broken[0]})")
    return StageOutcome(PipelineState(model=model, teacher=state.teacher), record)
