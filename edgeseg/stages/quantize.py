"""`quantize`: the current model to a `.tflite`, in the recipe's mode.

`int8` (the default) is full-integer: the input is uint8 with scale 1 and zero point 0, so an app
passes RGB pixels unchanged. The calibrator only sees the range the representative images cover,
so one calibration image carries a 0 and a 255 pixel: the input's range is the camera's, not the
calibration set's. With `qat:`, the model is first fine-tuned quantization-aware (PQAT, CQAT or
PCQAT when prune or cluster came before, so their zeros and clusters survive). `int16x8`,
`float16` and `dynamic` keep a float32 input and output. `auto` tries int8, then repairs (see
`edgeseg.quantization_repair`).
"""

import logging
import warnings

import numpy as np

from edgeseg._keras import native_stderr_silenced, tf
from edgeseg.quiet import native_output_silenced
from edgeseg.errors import ModelError, StageError
from edgeseg.files import file_sizes, write_bytes_atomic
from edgeseg.kernels import layer_kernel, max_values_per_channel
from edgeseg.models.labels import labels_model
from edgeseg.progress import progress
from edgeseg.stages.base import PipelineState, StageOutcome
from edgeseg.tflite import TFLiteSegmenter
from edgeseg.tflite_size import gzip_breakdown

log = logging.getLogger("edgeseg")
EXACT_PIXEL_INPUT = (1.0, 0)


def calibration_images(images: np.ndarray, count: int, seed: int) -> np.ndarray:
    """`count` images drawn without replacement (cycling if too few), the first pinned to span 0..255."""
    order = np.random.default_rng(seed).permutation(len(images))
    chosen = images[np.resize(order, count)].copy()
    chosen[0, 0, 0], chosen[0, 0, 1] = 0, 255
    return chosen


def ptq_converter(model, images: np.ndarray | None = None):
    """A converter of `model` with TensorFlow's default optimizations and, given calibration images,
    a representative dataset of them: what every post-training quantization here starts from.

    Example:
        >>> converter = ptq_converter(model, calibration_images(train.images, 100, seed=0))
    """
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if images is not None:
        def representative_dataset():
            for image in progress(images, desc="calibrating", unit="img"):
                yield [image[None].astype(np.float32)]

        converter.representative_dataset = representative_dataset
    return converter


OUTPUT_TYPES = {"int8": tf.int8, "uint8": tf.uint8}


def int8_converter(model, images: np.ndarray, output_type: str = "int8"):
    """The converter of a full-int8 `.tflite`: int8 builtins only, uint8 input, `output_type` logits.

    Example:
        >>> converter = int8_converter(model, images)
        >>> converter.optimizations.append(tf.lite.Optimize.EXPERIMENTAL_SPARSITY)  # sparse tensor encoding
    """
    converter = ptq_converter(model, images)
    converter.inference_input_type = tf.uint8
    converter.inference_output_type = OUTPUT_TYPES[output_type]
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    return converter


def convert_int8(model, images: np.ndarray, float_tensors: list[str] = (), output_type: str = "int8") -> bytes:
    """Converts a Keras model (float, or quantization-aware) to a full-int8 `.tflite`: uint8 input,
    int8 (or `output_type` uint8) logits, int8 kernels (a `labels_model` keeps its uint8 class ids).
    The ops producing `float_tensors` (names from the quantization debugger) stay in float, between
    a dequantize and a quantize.

    Example:
        >>> TFLiteSegmenter(convert_int8(model, images, output_type="uint8")).output["dtype"]
        <class 'numpy.uint8'>
    """
    converter = int8_converter(model, images, output_type)
    # mlir_quantize prints its settings on stdout.
    with native_output_silenced(), warnings.catch_warnings():
        # The converter warns that uint8 input statistics are missing; calibration provides them.
        warnings.filterwarnings("ignore", message="Statistics for quantized inputs")
        if not float_tensors:
            return converter.convert()
        # The public converter cannot leave chosen ops in float; the quantization debugger does it by
        # calibrating first and quantizing with a denylist, and the converter then sets the I/O
        # types, through these same internal calls.
        from tensorflow.lite.python.convert import mlir_quantize
        from tensorflow.lite.python.util import modify_model_io_type

        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
        converter._experimental_calibrate_only = True
        quantized = mlir_quantize(converter.convert(), denylisted_nodes=list(float_tensors))
        return modify_model_io_type(quantized, tf.uint8, OUTPUT_TYPES[output_type])


def convert(model, mode: str, images: np.ndarray, output_type: str = "int8") -> bytes:
    """The `.tflite` of a float Keras model in one of the recipe's quantization modes.

    Example:
        >>> TFLiteSegmenter(convert(model, "float16", images)).input["dtype"]
        <class 'numpy.float32'>
    """
    if mode == "int8":
        return convert_int8(model, images, output_type=output_type)
    converter = ptq_converter(model, images if mode == "int16x8" else None)
    if mode == "int16x8":
        converter.target_spec.supported_ops = [tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8]
    elif mode == "float16":
        converter.target_spec.supported_types = [tf.float16]
    with native_stderr_silenced():
        return converter.convert()


def convert_float(model) -> bytes:
    """The float32 `.tflite` of a Keras model: the reference that separates conversion from quantization error."""
    with native_stderr_silenced():
        return tf.lite.TFLiteConverter.from_keras_model(model).convert()


def compression_kept(model, int8_kernels: dict[str, dict]) -> dict:
    """Checks, layer by layer, that the `.tflite` kernels keep the Keras kernels' zeros and clusters.

    Quantization can only add zeros and merge values: a pruned zero maps to 0 and a channel's k
    clustered values (scaled per channel when BatchNorm is folded in) to at most k integers. A
    layer with fewer zeros or more values per channel in the file than in Keras is `lost`. Only
    layers that were compressed are summed: some sparsity, or fewer values per channel than half
    its weights.
    """
    sparse_total = sparse_zeros = 0
    max_unique, lost = 0, []
    for layer, kernel in _layers_with_kernels(model):
        zeros, unique, pruned, clustered = _compression(kernel)
        stored = int8_kernels.get(layer.name)
        if stored is None:
            if pruned or clustered:
                lost.append(f"{layer.name}: compressed, but not found in the .tflite to check")
            continue
        if pruned:
            sparse_total += kernel.size
            sparse_zeros += stored["sparsity"] * kernel.size
        if clustered:
            max_unique = max(max_unique, stored["max_unique_per_channel"])
        if stored["sparsity"] < zeros - 1e-6 or stored["max_unique_per_channel"] > unique:
            lost.append(f"{layer.name}: zeros {zeros:.3f} -> {stored['sparsity']:.3f}, values per channel "
                        f"{unique} -> {stored['max_unique_per_channel']}")
    return {
        "sparsity_of_pruned_layers": sparse_zeros / sparse_total if sparse_total else None,
        "max_unique_per_channel_of_clustered_layers": max_unique or None,
        "lost": lost,
    }


def quantization_aware_model(model, cfg, ctx, calibration: np.ndarray):
    """`model` fine-tuned quantization-aware for `cfg` (a `qat:` section), with the scheme that keeps
    what its kernels hold (zeros from pruning, clusters), whether made by this recipe's stages or
    before, and activation ranges started on `calibration`; returns the QAT model and the figures
    for the record."""
    from edgeseg.quantization_aware import collaborative_scheme, quantize_aware
    from edgeseg.training import fit_segmentation

    scheme = collaborative_scheme(*compression_of(model))
    log.info("  quantization-aware training (%s) for %d epochs", scheme, cfg.epochs)
    qat_model = quantize_aware(model, scheme, calibration=calibration)
    fit = fit_segmentation(qat_model, qat_model, cfg, ctx)
    return qat_model, {"qat": {"scheme": scheme, **fit}}


def compression_of(model) -> tuple[bool, bool]:
    """Whether any kernel of `model` is pruned, and whether any is clustered."""
    found = [_compression(kernel)[2:] for _, kernel in _layers_with_kernels(model)]
    return any(pruned for pruned, _ in found), any(clustered for _, clustered in found)


def compressed_layers(model) -> list[str]:
    """Names of the layers whose kernel is pruned or clustered."""
    return [layer.name for layer, kernel in _layers_with_kernels(model) if any(_compression(kernel)[2:])]


def _layers_with_kernels(model):
    for layer in model.layers:
        kernel = layer_kernel(layer)
        if kernel is not None:
            yield layer, kernel


def _compression(kernel: np.ndarray) -> tuple[float, int, bool, bool]:
    """The kernel's fraction of zeros and most values in one output channel, and whether that makes
    it pruned (some exact zeros, which training never makes) and clustered (fewer values per output
    channel than half its weights)."""
    zeros, unique = float(np.mean(kernel == 0)), max_values_per_channel(kernel)
    return zeros, unique, zeros > 0.01, unique < kernel.size / kernel.shape[-1] / 2


def shipped_form(model, recipe):
    """`model` as the recipe exports it: ending in the in-graph argmax (`labels_model`) for
    `export: {output: labels}`, as it is for logits. What is converted and what the float
    reference of a drop is."""
    export = dict(recipe.stage_items()).get("export")
    return labels_model(model) if export is not None and export.output == "labels" else model


def apply(state: PipelineState, cfg, ctx) -> StageOutcome:
    """Quantizes `state.model`; the float model stays current for `verify` to compare against."""
    images = calibration_images(ctx.train.images, cfg.calibration_images, ctx.seed)
    if cfg.mode == "auto":
        details = _repaired(state.model, cfg, ctx, images)
    elif cfg.qat is not None:
        qat_model, details = quantization_aware_model(state.model, cfg.qat, ctx, images)
        details = {"tflite": convert_int8(shipped_form(qat_model, ctx.recipe), images, output_type=cfg.output_type),
                   "mode": "int8", **details}
    else:
        details = {"tflite": convert(shipped_form(state.model, ctx.recipe), cfg.mode, images, cfg.output_type),
                   "mode": cfg.mode}
    tflite, mode = details.pop("tflite"), details["mode"]
    path = write_bytes_atomic(ctx.stage_dir / "model.tflite", tflite)
    try:
        segmenter = TFLiteSegmenter(tflite, source=str(path))
    except ModelError as error:
        raise StageError(f"quantize: the interpreter cannot prepare the {mode} model ({error}); "
                         "another stages.quantize.mode may convert") from None
    if mode == "int8" and segmenter.input_quantization != EXACT_PIXEL_INPUT:
        raise StageError(
            f"quantize: input quantization is (scale, zero_point)={segmenter.input_quantization}; "
            f"expected {EXACT_PIXEL_INPUT} so raw pixels map exactly"
        )
    ops = segmenter.op_report()
    with_kernels = {layer.name for layer, _ in _layers_with_kernels(state.model)}
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
        raise StageError(f"quantize: the .tflite lost what prune/cluster made in {len(kept['lost'])} kernels "
                         f"(e.g. {kept['lost'][0]})")
    return StageOutcome(PipelineState(model=state.model, teacher=state.teacher, tflite=tflite, tflite_mode=mode), record)


def _repaired(model, cfg, ctx, images: np.ndarray) -> dict:
    from edgeseg.quantization_repair import attempt_saver, first_within_budget, repair_steps
    from edgeseg.recipe import QatConfig
    from edgeseg.scoring import KerasSegmenter, score_split

    verify = dict(ctx.recipe.stage_items()).get("verify")
    budget = cfg.max_miou_drop if cfg.max_miou_drop is not None else verify.max_miou_drop
    threads = verify.threads if verify is not None else 2

    def miou_of(tflite: bytes) -> float:
        return score_split(TFLiteSegmenter(tflite, threads=threads), ctx.val, ctx.num_classes, desc="auto: scoring")["miou"]

    float_miou = score_split(KerasSegmenter(shipped_form(model, ctx.recipe)), ctx.val, ctx.num_classes, desc="auto: scoring float")["miou"]
    steps = repair_steps(model, cfg, ctx, images,
                         train_qat=lambda float_model: quantization_aware_model(float_model, cfg.qat or QatConfig(), ctx, images),
                         float_miou_of=miou_of)
    return first_within_budget(steps, lambda tflite: float_miou - miou_of(tflite), budget,
                               save=attempt_saver(ctx.stage_dir / "attempts"))
