"""`verify`: score the `.tflite` with the interpreter next to the float model, and apply the gates.

Float Keras, float TFLite and the quantized file are scored by one evaluator on the same val
images, so a drop can be told apart as conversion error (float TFLite) or quantization error.
"""

import numpy as np

from edgeseg.files import content_sizes
from edgeseg.models.labels import shipped_form
from edgeseg.overlay import class_colors
from edgeseg.plots import plot_class_iou, plot_confusion, plot_gallery
from edgeseg.quantization.converters import calibration_images, convert_float
from edgeseg.quantization.debug import debug_quantization
from edgeseg.scoring import agreement, score_split
from edgeseg.segmenter import KerasSegmenter
from edgeseg.stages.base import PipelineState, StageOutcome
from edgeseg.tflite import TFLiteSegmenter, interpreter_memory_kib, latency_by_threads


def gate_failures(cfg, record: dict, class_names: list[str]) -> list[str]:
    """One line per failed gate of the `verify:` section, naming the gate and both figures."""
    quantized, drop, mode = record["quantized"]["miou"], record["miou_drop"], record["mode"]
    failures = []
    if cfg.min_miou is not None and quantized < cfg.min_miou:
        failures.append(f"verify.min_miou: {mode} mIoU {quantized:.4f} is below {cfg.min_miou}")
    if cfg.max_miou_drop is not None and drop > cfg.max_miou_drop:
        failures.append(
            f"verify.max_miou_drop: {mode} mIoU {quantized:.4f} is {drop:.4f} below float {record['float']['miou']:.4f}, "
            f"more than {cfg.max_miou_drop}"
        )
    if cfg.max_class_iou_drop is not None:
        for name, class_drop in zip(class_names, record["class_iou_drop"]):
            if class_drop is not None and class_drop > cfg.max_class_iou_drop:
                failures.append(
                    f"verify.max_class_iou_drop: class '{name}' lost {class_drop:.4f} IoU, more than {cfg.max_class_iou_drop}"
                )
    latency = record["latency"][str(cfg.threads)]["median_ms"]
    if cfg.max_latency_ms is not None and latency > cfg.max_latency_ms:
        failures.append(f"verify.max_latency_ms: median {latency:.2f} ms at {cfg.threads} threads exceeds {cfg.max_latency_ms}")
    size_kib = record["bytes"] / 1024
    if cfg.max_size_kb is not None and size_kib > cfg.max_size_kb:
        failures.append(f"verify.max_size_kb: the .tflite is {size_kib:.1f} KiB, more than {cfg.max_size_kb}")
    return failures


def apply(state: PipelineState, cfg, ctx) -> StageOutcome:
    """Scores float Keras, float TFLite and the quantized TFLite on the val split; records failed gates and plots.

    For a labels export the float models end in the same in-graph argmax, so the drop is the
    quantization's alone."""
    mode, tflite = state.tflite_mode, state.quantized()
    shipped_float = shipped_form(state.model, cfg.output)
    float_model = KerasSegmenter(shipped_float)
    quantized_model = TFLiteSegmenter(tflite, threads=cfg.threads)
    float_tflite = TFLiteSegmenter(convert_float(shipped_float), threads=cfg.threads)
    scores = {
        "float": score_split(float_model, ctx.val, ctx.num_classes, desc="scoring float Keras"),
        "float_tflite": score_split(float_tflite, ctx.val, ctx.num_classes, desc="scoring float .tflite"),
        "quantized": score_split(quantized_model, ctx.val, ctx.num_classes, desc=f"scoring {mode} .tflite"),
    }
    record = {
        "mode": mode,
        **scores,
        "miou_drop": scores["float"]["miou"] - scores["quantized"]["miou"],
        "class_iou_drop": [
            None if f is None or q is None else f - q
            for f, q in zip(scores["float"]["per_class_iou"], scores["quantized"]["per_class_iou"])
        ],
        "agreement": agreement(float_model, quantized_model, ctx.val.images),
        "latency": latency_by_threads(tflite, [1, cfg.threads], cfg.latency_runs),
        "threads": cfg.threads,
        "memory_kib": interpreter_memory_kib(tflite),
        "op_report": quantized_model.op_report(),
        **content_sizes(tflite),
        "plots": _plots(float_model, quantized_model, scores, cfg, ctx),
    }
    if cfg.debug_layers and mode == "int8":
        record["quantization_debug"] = _debug(state.model, cfg, ctx)
    record["failed_gates"] = gate_failures(cfg, record, ctx.class_names)
    return StageOutcome(state, record)


def _debug(model, cfg, ctx) -> dict:
    images = calibration_images(ctx.train.images, cfg.calibration_images, ctx.seed)

    def miou(tflite: bytes) -> float:
        return score_split(TFLiteSegmenter(tflite, threads=cfg.threads), ctx.val, ctx.num_classes, desc="debugging")["miou"]

    return debug_quantization(model, images, miou, cfg.debug_layers)


def _plots(float_model, quantized_model, scores: dict, cfg, ctx) -> list[str]:
    plots_dir = ctx.run_dir / "plots"
    written = [
        plot_class_iou(
            ctx.class_names, scores["float"]["per_class_iou"], scores["quantized"]["per_class_iou"], plots_dir / "class_iou.png"
        ),
        plot_confusion(scores["quantized"]["confusion_matrix"], ctx.class_names, plots_dir / "confusion_matrix.png"),
    ]
    if cfg.gallery_images:
        # Evenly spaced, since neighbouring images of a video-derived split are near duplicates.
        picks = np.unique(np.linspace(0, len(ctx.val) - 1, cfg.gallery_images).round().astype(int))
        images, truths = ctx.val.images[picks], ctx.val.labels[picks]
        colors = class_colors(ctx.num_classes, ctx.recipe.data.palette)
        columns = [
            ("input", None),
            ("truth", truths),
            ("float", float_model.predict_labels(images)),
            ("quantized", quantized_model.predict_labels(images)),
        ]
        written.append(plot_gallery(images, columns, colors, ctx.ignore_index, plots_dir / "gallery.png"))
    return [str(path.relative_to(ctx.run_dir)) for path in written]
