"""`prune_channels`: whole channels removed (`edgeseg.channel_pruning`), so the int8 file is smaller
and faster, then a fine-tune on the labels, and with `distill:` on a teacher's logits too.

The channels that must go together are read from the model's graph; every group but the model's
input, its logits and `keep_layers` may shrink. Channels are ranked by `importance` and kept by one
global ranking to `keep` of the MACs, the parameters or the int8 file's measured latency
(`allocation: uniform` keeps the same fraction of every group instead); the latency is this
machine's interpreter's, or a device's through `measure_command`. In `steps` rounds, each
removing an equal share (geometrically) and followed by an equal share of the fine-tune epochs;
the last round keeps its best val epoch. With `distill:`, the fine-tune also learns from a
teacher's logits: the teacher a `distill` stage learned from, or, without one, the model as it was
before pruning. A round's model is saved in `step-<n>/`, and a latency target's plan in
`latency_plan.json`, so `--resume` continues after the last completed round with the same plan.
"""

import dataclasses
import json
import logging

from edgeseg.channel_pruning.allocation import kept_channels, largest_within, narrowest_fraction
from edgeseg.channel_pruning.groups import find_groups, layers_matching
from edgeseg.channel_pruning.importance import channel_importance
from edgeseg.channel_pruning.removal import remove_channels
from edgeseg.data.pipeline import training_batches
from edgeseg.distillation import fine_tune_loss, fine_tune_trainer
from edgeseg.errors import StageError
from edgeseg.files import write_json_atomic
from edgeseg.losses import masked_cross_entropy
from edgeseg.measure import command_latency_ms, deployment_costs, int8_files, latency_ratio
from edgeseg.models.io import load_model, save_model
from edgeseg.profile import profile_model
from edgeseg.quantization.converters import calibration_images, convert_int8
from edgeseg.stages.base import PipelineState, StageOutcome, save_stage_model
from edgeseg.training import fit_segmentation

log = logging.getLogger("edgeseg")
CALIBRATION_IMAGES = 16
"""Calibration for measuring int8 files: their size and speed do not depend on the ranges."""
LATENCY_PROBES = 6
"""Converted and timed candidates when bisecting the MACs fraction for a latency target."""
MEASURE_KEY = "prune_channels.measure_command"
LATENCY_PLAN_FILE = "latency_plan.json"
LATENCY_SLACK = 0.05
"""How far above `keep` the removed model's final timing may land before the stage warns: one
probe's timing varies by a few hundredths on an idle machine (0.728 and 0.884 of the time for 0.731
and 0.771 of the MACs on CamVid), by much more on a busy one."""


def apply(state: PipelineState, cfg, ctx) -> StageOutcome:
    """Removes channels from `state.model` in `cfg.steps` rounds, fine-tuning after each."""
    original = state.model
    calibration = calibration_images(ctx.train.images, CALIBRATION_IMAGES, ctx.seed)
    groups = find_groups(original, pinned_layers=layers_matching(original, cfg.keep_layers))
    shrinkable = [group for group in groups if group.pinned is None]
    log.info("  %d channel groups, %d may shrink", len(groups), len(shrinkable))
    kind, keep = (
        (cfg.target, cfg.keep)
        if cfg.target != "latency"
        else ("macs", _planned_macs_fraction(original, groups, cfg, ctx, calibration))
    )
    teacher = state.teacher if state.teacher is not None else original
    full_cost = profile_model(original)[kind]
    model, steps = original, []
    for step in range(1, cfg.steps + 1):
        step_ctx = dataclasses.replace(ctx, stage_dir=ctx.stage_dir / f"step-{step}", stage_key=f"{ctx.stage_key}:{step}")
        # Only a stage of a run has a key; a bare call (a script, a notebook) reuses nothing.
        done = _completed_step(step_ctx) if ctx.stage_key else None
        if done is not None:
            model, record = done
            log.info("  step %d of %d reused from %s", step, cfg.steps, step_ctx.stage_dir)
        else:
            model, record = _step(model, teacher, cfg, step_ctx, kind, keep ** (step / cfg.steps), full_cost, step)
        steps.append(record)
    # Converted once: the device timing of a latency target takes the same files.
    measured = {"before": original, "after": model}
    files = int8_files(measured, calibration)
    costs = deployment_costs(measured, files, threads=(1, cfg.threads))
    record = {
        **steps[-1]["fit"],
        **save_stage_model(model, ctx),
        "target": cfg.target,
        "keep": cfg.keep,
        "importance": cfg.importance,
        "allocation": cfg.allocation,
        "fine_tune_loss": fine_tune_loss(
            cfg.distill, "the teacher" if state.teacher is not None else "the unpruned model", cfg.lovasz_weight
        ),
        "kept_macs_fraction": keep if cfg.target == "latency" else None,
        "groups": len(groups),
        "pinned": [group.pinned for group in groups if group.pinned is not None],
        "steps": [{key: value for key, value in step.items() if key != "fit"} for step in steps],
        "before": costs["before"],
        "after": costs["after"],
        "widths": _widths(original, model),
    }
    before, after = costs["before"], costs["after"]
    if cfg.target == "latency":
        if cfg.measure_command is not None:
            record["device_latency_ms"] = {
                name: command_latency_ms(content, cfg.measure_command, MEASURE_KEY) for name, content in files.items()
            }
            timed = record["device_latency_ms"]
            ratio, timed_by = timed["after"] / timed["before"], "on the device (measure_command)"
        else:
            threads = str(cfg.threads)
            ratio, timed_by = after["latency_ms"][threads] / before["latency_ms"][threads], f"at {cfg.threads} threads here"
        record["latency_target_missed"] = latency_target_missed(cfg.keep, ratio, timed_by)
        if record["latency_target_missed"]:
            log.warning("prune_channels: %s", record["latency_target_missed"])
    log.info(
        "  MACs %.0f%%, params %.0f%%, int8 file %.0f%%, latency %.0f%% (%d threads) of the unpruned model's",
        *(100 * after[key] / before[key] for key in ("macs", "params", "bytes")),
        100 * after["latency_ms"][str(cfg.threads)] / before["latency_ms"][str(cfg.threads)],
        cfg.threads,
    )
    return StageOutcome(PipelineState(model=model, teacher=state.teacher), record)


def latency_target_missed(keep: float, ratio: float, timed_by: str) -> str | None:
    """Why the removed model misses a latency target, or None: its final timing, `ratio` of the
    unpruned model's (`timed_by` says where), above `keep` by more than `LATENCY_SLACK`. The
    bisection trusts each probe's timing, so a machine busy while it timed them gives a plan that
    runs slower than asked.

    Example:
        >>> latency_target_missed(0.8, 0.82, "at 2 threads here") is None
        True
        >>> latency_target_missed(0.8, 0.87, "at 2 threads here")[:55]
        "the removed model runs in 0.87 of the unpruned model's "
    """
    if ratio <= keep + LATENCY_SLACK:
        return None
    return (
        f"the removed model runs in {ratio:.2f} of the unpruned model's latency {timed_by}, above keep {keep:g}: "
        "the probes were probably timed while the machine was busy; run again without --resume when it is idle "
        "(--resume would keep this stage), or lower keep"
    )


def _step(model, teacher, cfg, ctx, kind: str, keep_of_original: float, full_cost: float, step: int):
    """One round: rank, keep channels down to `keep_of_original` of the unpruned model's `kind`
    (`full_cost`), remove them, fine-tune; saved to the round's folder."""
    ctx.stage_dir.mkdir(parents=True, exist_ok=True)
    groups = find_groups(model, pinned_layers=layers_matching(model, cfg.keep_layers))
    importance = _importance(model, groups, cfg, ctx)
    fraction = min(1.0, keep_of_original * full_cost / profile_model(model)[kind])
    try:
        kept = _plan(model, groups, importance, (kind, fraction), cfg)
    except ValueError as error:
        raise StageError(
            f"prune_channels.keep: {error}; raise keep or lower round_to / min_channels. Received: keep={cfg.keep}"
        ) from None
    pruned = remove_channels(model, groups, kept)
    epochs = cfg.epochs // cfg.steps + (cfg.epochs % cfg.steps if step == cfg.steps else 0)
    fit_cfg = cfg.model_copy(update={"epochs": epochs, "warmup_epochs": min(cfg.warmup_epochs, epochs - 1)})
    log.info(
        "  step %d of %d: %s to %.3f of the unpruned model's, then %d fine-tune epochs",
        step,
        cfg.steps,
        kind,
        keep_of_original,
        epochs,
    )
    fit = fit_segmentation(
        fine_tune_trainer(pruned, teacher, cfg.distill, ctx.ignore_index, "prune_channels", cfg.lovasz_weight),
        pruned,
        fit_cfg,
        ctx,
        keep_best=step == cfg.steps,
    )
    record = {
        "step": step,
        "key": ctx.stage_key,
        "kept_fraction_of_step": fraction,
        "fit": fit,
        kind: profile_model(pruned)[kind],
    }
    save_model(pruned, ctx.stage_dir / "model.keras")
    write_json_atomic(ctx.stage_dir / "record.json", record)
    return pruned, record


def _importance(model, groups, cfg, ctx) -> dict:
    """Each group's channel scores by `cfg.importance`; Taylor's on `cfg.taylor_batches` seeded train batches."""
    batches = (
        training_batches(ctx.train, ctx.batch_size, None, ctx.seed).take(cfg.taylor_batches)
        if cfg.importance == "taylor"
        else None
    )
    return channel_importance(
        model, groups, cfg.importance, batches, lambda labels, logits: masked_cross_entropy(labels, logits, ctx.ignore_index)
    )


def _completed_step(ctx):
    """The model and record of a round a killed run completed, when its key is this run's."""
    try:
        record = json.loads((ctx.stage_dir / "record.json").read_text())
    except (OSError, ValueError):
        return None
    if record.get("key") != ctx.stage_key:
        return None
    return load_model(ctx.stage_dir / "model.keras"), record


def _planned_macs_fraction(model, groups, cfg, ctx, calibration) -> float:
    """The MACs fraction a latency target keeps (`_macs_for_latency`), kept in the stage's folder
    under its key: a killed run, resumed, continues with the plan its completed rounds were made
    with, where a new bisection would time other figures and plan another model. A bare call (no
    stage key) plans anew and keeps nothing."""
    if not ctx.stage_key:
        return _macs_for_latency(model, groups, cfg, ctx, calibration)
    plan_file = ctx.stage_dir / LATENCY_PLAN_FILE
    try:
        plan = json.loads(plan_file.read_text())
    except (OSError, ValueError):
        plan = {}
    if plan.get("key") == ctx.stage_key:
        log.info("  latency target: %.3f of the MACs, as the interrupted run planned (%s)", plan["macs_fraction"], plan_file)
        return plan["macs_fraction"]
    fraction = _macs_for_latency(model, groups, cfg, ctx, calibration)
    plan_file.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(plan_file, {"key": ctx.stage_key, "macs_fraction": fraction})
    return fraction


def _macs_for_latency(model, groups, cfg, ctx, calibration) -> float:
    """The largest MACs fraction whose plan's int8 file runs in at most `cfg.keep` of the unpruned
    file's latency: by `cfg.measure_command` on the device, or else here at `cfg.threads` (each
    candidate converted and timed alternately with it). The probes are planned on the stage's own
    importance, so the first round removes the channels they timed (Taylor too: l1 in their place
    planned other widths, on CamVid a file 1.8x the size at the same MACs)."""
    importance = _importance(model, groups, cfg, ctx)
    reference = convert_int8(model, calibration)
    low = narrowest_fraction(model, groups, importance, "macs", cfg.round_to, cfg.min_channels)
    command = cfg.measure_command

    def latency_at(fraction: float) -> float:
        if fraction >= 1.0:
            return 1.0
        candidate = convert_int8(
            remove_channels(model, groups, _plan(model, groups, importance, ("macs", fraction), cfg)), calibration
        )
        ratio = (
            # The reference timed again beside each probe: a phone warming up slows later probes.
            command_latency_ms(candidate, command, MEASURE_KEY) / command_latency_ms(reference, command, MEASURE_KEY)
            if command is not None
            else latency_ratio(reference, candidate, cfg.threads)
        )
        log.info("  latency target: %.3f of the MACs runs in %.3f of the time", fraction, ratio)
        return ratio

    fraction = largest_within(latency_at, cfg.keep, low=low, high=1.0, steps=LATENCY_PROBES)
    if fraction is None:
        raise StageError(
            f"prune_channels.keep: the narrowest model this allows still takes more than {cfg.keep} of the "
            f"latency; raise keep or lower round_to / min_channels. Received: keep={cfg.keep}"
        )
    return fraction


def _plan(model, groups, importance, target, cfg):
    return kept_channels(model, groups, importance, target, cfg.allocation, cfg.round_to, cfg.min_channels, cfg.cost_weighted)


def _widths(before, after) -> list[dict]:
    """Output channels of each convolution and dense layer, before and after (the depthwise ones follow their input)."""
    widths = []
    for layer in before.layers:
        if hasattr(layer, "kernel") or hasattr(layer, "depthwise_kernel"):
            new = after.get_layer(layer.name)
            widths.append({"layer": layer.name, "before": int(layer.output_shape[-1]), "after": int(new.output_shape[-1])})
    return widths
