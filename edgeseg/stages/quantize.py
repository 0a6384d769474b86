"""`quantize`: the current model to a `.tflite`, in the recipe's mode.

The conversions live in `edgeseg.quantization`: `int8` (the default) is full-integer with uint8
camera bytes in; with `qat:`, the model is first fine-tuned quantization-aware (PQAT, CQAT or
PCQAT when prune or cluster came before, so their zeros and clusters survive); `auto` tries int8,
then repairs (`edgeseg.quantization.repair`). This stage converts the form `export` ships, checks
the file (input quantization, kernels that kept their compression) and records it.
"""

import logging

from edgeseg.errors import ModelError, StageError
from edgeseg.files import file_sizes, write_bytes_atomic
from edgeseg.kernels import compressed_layers, compression_kept, layers_with_kernels
from edgeseg.models.labels import shipped_form
from edgeseg.quantization.aware import fine_tune_quantization_aware
from edgeseg.quantization.converters import EXACT_PIXEL_INPUT, calibration_images, convert, convert_int8
from edgeseg.quantization.repair import attempt_saver, first_within_budget, repair_steps
from edgeseg.recipe import QatConfig
from edgeseg.scoring import score_split
from edgeseg.segmenter import KerasSegmenter
from edgeseg.stages.base import PipelineState, StageOutcome
from edgeseg.tflite import TFLiteSegmenter
from edgeseg.tflite_size import gzip_breakdown

log = logging.getLogger("edgeseg")


def apply(state: PipelineState, cfg, ctx) -> StageOutcome:
    """Quantizes `state.model`; the float model stays current for `verify` to compare against."""
    images = calibration_images(ctx.train.images, cfg.calibration_images, ctx.seed)
    if cfg.mode == "auto":
        details = _repaired(state.model, cfg, ctx, images)
    elif cfg.qat is not None:
        qat_model, details = fine_tune_quantization_aware(state.model, cfg.qat, ctx, images)
        details = {
            "tflite": convert_int8(shipped_form(qat_model, cfg.output), images, output_type=cfg.output_type),
            "mode": "int8",
            **details,
        }
    else:
        details = {"tflite": convert(shipped_form(state.model, cfg.output), cfg.mode, images, cfg.output_type), "mode": cfg.mode}
    tflite, mode = details.pop("tflite"), details["mode"]
    path = write_bytes_atomic(ctx.stage_dir / "model.tflite", tflite)
    try:
        segmenter = TFLiteSegmenter(tflite, source=str(path))
    except ModelError as error:
        raise StageError(
            f"quantize: the interpreter cannot prepare the {mode} model ({error}); another stages.quantize.mode may convert"
        ) from None
    if mode == "int8" and segmenter.input_quantization != EXACT_PIXEL_INPUT:
        raise StageError(
            f"quantize: input quantization is (scale, zero_point)={segmenter.input_quantization}; "
            f"expected {EXACT_PIXEL_INPUT} so raw pixels map exactly"
        )
    ops = segmenter.op_report()
    with_kernels = {layer.name for layer, _ in layers_with_kernels(state.model)}
    kept = compression_kept(state.model, segmenter.kernel_stats(with_kernels))
    compressed = compressed_layers(state.model)
    if compressed and not kept["lost"]:  # a lost kernel fails the stage below, naming it
        kept["gzip_breakdown"] = gzip_breakdown(segmenter, compressed)
    record = {
        **details,
        "artifact": str(path.relative_to(ctx.run_dir)),
        "calibration_images": details.get("calibration_images", cfg.calibration_images),
        "input_quantization": list(segmenter.input_quantization),
        "float_ops": ops["float_ops"],
        "ops": sorted(op["op"] for op in ops["ops"]),
        "kernels": kept,
        **file_sizes(path),
    }
    if mode == "int8" and ops["float_ops"] and not details.get("float_layers"):
        log.warning("  quantize: float ops in the int8 model: %s", ", ".join(ops["float_ops"]))
    if kept["lost"]:
        raise StageError(
            f"quantize: the .tflite lost what prune/cluster made in {len(kept['lost'])} kernels (e.g. {kept['lost'][0]})"
        )
    return StageOutcome(PipelineState(model=state.model, teacher=state.teacher, tflite=tflite, tflite_mode=mode), record)


def _repaired(model, cfg, ctx, images) -> dict:
    def miou_of(tflite: bytes) -> float:
        return score_split(TFLiteSegmenter(tflite, threads=cfg.threads), ctx.val, ctx.num_classes, desc="auto: scoring")["miou"]

    float_miou = score_split(
        KerasSegmenter(shipped_form(model, cfg.output)), ctx.val, ctx.num_classes, desc="auto: scoring float"
    )["miou"]
    steps = repair_steps(
        model,
        cfg,
        ctx,
        images,
        train_qat=lambda float_model: fine_tune_quantization_aware(float_model, cfg.qat or QatConfig(), ctx, images),
        float_miou_of=miou_of,
    )
    return first_within_budget(
        steps, lambda tflite: float_miou - miou_of(tflite), cfg.max_miou_drop, save=attempt_saver(ctx.stage_dir / "attempts")
    )
