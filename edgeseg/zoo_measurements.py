"""The zoo measured model by model, for docs/MODELS.md: params and MACs, int8 file size, interpreter
latency, and whether quantization-aware training gives a full-int8 file.

Weights are untrained (latency and size do not depend on them); calibration and the QAT check use
random pixels. Latency is the median of timed interpreter invokes on this machine's CPU.

Example::

    rows = measure_zoo(input_size=(256, 256), alpha=1.0)
    print("\\n".join(zoo_markdown(rows, command="python tools/measure_zoo.py")))
"""

import time
from pathlib import Path

import numpy as np

from edgeseg.files import write_json_atomic, write_text_atomic
from edgeseg.markdown import table_head
from edgeseg.progress import progress

NUM_CLASSES = 11


def zoo_entries() -> list[tuple[str, str, bool]]:
    """(arch, backbone, minimalistic) for every head and backbone, V3 also minimalistic."""
    from edgeseg.models.zoo import BACKBONES, HEADS

    return [
        (arch, backbone, minimalistic)
        for arch in HEADS
        for backbone in BACKBONES
        for minimalistic in ((False, True) if backbone.startswith("mobilenet_v3") else (False,))
    ]


def measure_zoo(input_size=(256, 256), alpha: float = 1.0, threads=(1, 2), runs: int = 30) -> list[dict]:
    """One row per zoo entry: params, MACs at `input_size`, int8 bytes, latency per thread count, QAT ok."""
    from edgeseg.models.zoo import build_model
    from edgeseg.profile import profile_model
    from edgeseg.quantization.aware import quantize_aware
    from edgeseg.quantization.converters import calibration_images, convert_int8
    from edgeseg.recipe import ModelSpec
    from edgeseg.tflite import TFLiteSegmenter, latency_by_threads

    pixels = np.random.default_rng(0).integers(0, 256, (16, *input_size, 3), dtype=np.uint8)
    calibration = calibration_images(pixels, 16, seed=0)
    rows = []
    for arch, backbone, minimalistic in progress(zoo_entries(), desc="measuring the zoo", unit="model"):
        started = time.perf_counter()
        model = build_model(
            ModelSpec(arch=arch, backbone=backbone, alpha=alpha, minimalistic=minimalistic), input_size, NUM_CLASSES
        )
        profile = profile_model(model)
        int8 = convert_int8(model, calibration)
        qat = TFLiteSegmenter(convert_int8(quantize_aware(model, calibration=calibration), calibration))
        rows.append(
            {
                "arch": arch,
                "backbone": backbone,
                "minimalistic": minimalistic,
                "alpha": alpha,
                "params": profile["params"],
                "macs": profile["macs"],
                "int8_bytes": len(int8),
                "latency_ms": {count: row["median_ms"] for count, row in latency_by_threads(int8, list(threads), runs).items()},
                "float_ops": TFLiteSegmenter(int8).float_ops(),
                "qat_full_int8": qat.float_ops() == [],
                "seconds": round(time.perf_counter() - started, 1),
            }
        )
    return rows


def zoo_markdown(rows: list[dict], command: str) -> list[str]:
    """The rows as the table of docs/MODELS.md, under the command that measured them."""
    counts = list(rows[0]["latency_ms"])
    latency_titles = [f"latency {c} thr" for c in counts]
    lines = [
        f"Measured with `{command}`: alpha {rows[0]['alpha']:g}, {NUM_CLASSES} classes.",
        "",
        *table_head(
            "arch", "backbone", "params", "M MACs", "int8 file", *latency_titles, "int8 ops all integer", "QAT to full int8"
        ),
    ]
    for row in rows:
        backbone = row["backbone"] + (" (minimalistic)" if row["minimalistic"] else "")
        latency = " | ".join(f"{row['latency_ms'][c]:.1f} ms" for c in counts)
        lines.append(
            f"| {row['arch']} | {backbone} | {row['params']:,} | {row['macs'] / 1e6:,.0f} | "
            f"{row['int8_bytes'] / 1024:,.0f} KiB | {latency} | {'yes' if not row['float_ops'] else 'no'} | "
            f"{'yes' if row['qat_full_int8'] else 'no'} |"
        )
    return lines


HEAD_OUTPUTS = {
    "logits": "logits, bilinear upsample in the graph (default)",
    "labels_after_upsample": "labels, argmax after the upsample",
    "labels": "labels, argmax before the upsample (`export: {output: labels}`)",
}


def measure_head_outputs(
    model, calibration: np.ndarray, val=None, num_classes: int = NUM_CLASSES, threads=(1, 2), runs: int = 100
) -> list[dict]:
    """One row per output form of `model` (HEAD_OUTPUTS) as a full-int8 file: bytes, latency per
    thread count, the argmax an app must still run on logits (numpy, median of `runs`) and, given
    a `val` split, its mIoU there."""
    from edgeseg.models.labels import labels_model
    from edgeseg.quantization.converters import convert_int8
    from edgeseg.scoring import score_split
    from edgeseg.tflite import TFLiteSegmenter, latency_by_threads

    shipped = {
        "logits": model,
        "labels_after_upsample": labels_model(model, before_upsample=False),
        "labels": labels_model(model),
    }
    rows = []
    for output, keras_model in progress(shipped.items(), desc=f"measuring {model.name}", unit="output"):
        int8 = convert_int8(keras_model, calibration)
        segmenter = TFLiteSegmenter(int8)
        rows.append(
            {
                "model": model.name,
                "output": output,
                "int8_bytes": len(int8),
                "miou": None if val is None else score_split(segmenter, val, num_classes, desc="scoring")["miou"],
                "latency_ms": {count: row["median_ms"] for count, row in latency_by_threads(int8, list(threads), runs).items()},
                "app_argmax_ms": 0.0 if segmenter.outputs_labels else _argmax_ms(segmenter, calibration[0], runs),
                "tail_ops": {
                    op["op"]: op["count"]
                    for op in segmenter.op_report()["ops"]
                    if op["op"] in ("RESIZE_BILINEAR", "ARG_MAX", "DEPTH_TO_SPACE")
                },
            }
        )
    return rows


def _argmax_ms(segmenter, image: np.ndarray, runs: int) -> float:
    raw = segmenter.predict_raw(image)
    timings = []
    for _ in range(runs):
        started = time.perf_counter()
        raw.argmax(axis=-1)
        timings.append((time.perf_counter() - started) * 1000)
    return float(np.median(timings))


def head_outputs_markdown(rows: list[dict], command: str) -> list[str]:
    """The rows as the head-options table of docs/MODELS.md, under the command that measured them."""
    counts = list(rows[0]["latency_ms"])
    interpreter_titles = [f"interpreter {c} thr" for c in counts]
    class_ids_titles = [f"class ids {c} thr" for c in counts]
    lines = [
        f"Measured with `{command}`.",
        "",
        *table_head("model", "output", "int8 file", *interpreter_titles, "app's argmax (numpy)", *class_ids_titles, "val mIoU"),
    ]
    for row in rows:
        latency = " | ".join(f"{row['latency_ms'][c]:.2f} ms" for c in counts)
        to_ids = " | ".join(f"{row['latency_ms'][c] + row['app_argmax_ms']:.2f} ms" for c in counts)
        miou = "-" if row["miou"] is None else f"{row['miou']:.4f}"
        lines.append(
            f"| {row['model']} | {HEAD_OUTPUTS[row['output']]} | {row['int8_bytes'] / 1024:,.0f} KiB | {latency} "
            f"| {row['app_argmax_ms']:.2f} ms | {to_ids} | {miou} |"
        )
    return lines


def publish(table: list[str], rows: list[dict], out: Path | None) -> None:
    """Prints a measured table; with `out`, also writes it there and the rows as .json beside it."""
    text = "\n".join(table)
    print(text)
    if out:
        write_text_atomic(out, text + "\n")
        write_json_atomic(out.with_suffix(".json"), rows)
