"""Where int8 loses accuracy: per-layer error of the int8 model against float, and what keeping
the worst layers in float would give back.

TensorFlow's QuantizationDebugger runs the float and int8 graphs side by side on the same images
and measures each quantized tensor's error. Errors are ranked in quantization steps (RMSE /
scale): about 0.29 is plain rounding, much more means a tensor whose range the calibration fits
badly. For the worst layers, the model is converted again with that one layer kept in float and
scored, so the report says how much mIoU each costs.

Example::

    found = debug_quantization(model, calibration, score=lambda tflite: miou_of(tflite), layers=3)
    found["layers"][0]["layer"], found["layers"][0]["miou_with_layer_in_float"]
"""

import csv
import io

import numpy as np

from edgeseg._keras import tf
from edgeseg.quantization.converters import ptq_converter
from edgeseg.quiet import native_output_silenced


def debug_quantization(model, images: np.ndarray, score, layers: int) -> dict:
    """The `layers` tensors with the largest RMSE / scale, each with the mIoU `score(tflite)` gives
    the int8 model with that layer kept in float, and the mIoU of the int8 model itself.

    Models here have float input and output (the debugger's requirement), so figures compare with
    each other, not with the shipped uint8/int8 file's.
    """
    converter = ptq_converter(model, images)
    with native_output_silenced():
        debugger = tf.lite.experimental.QuantizationDebugger(converter=converter, debug_dataset=converter.representative_dataset)
        debugger.run()
        baseline = score(debugger.get_nondebug_quantized_model())
    worst = sorted(_layer_errors(debugger), key=lambda row: -row["rmse_over_scale"])[:layers]
    for row in worst:
        debugger.options = tf.lite.experimental.QuantizationDebugOptions(denylisted_nodes=[row["tensor"]])
        with native_output_silenced():
            row["miou_with_layer_in_float"] = score(debugger.get_nondebug_quantized_model())
        row["miou_gain"] = row["miou_with_layer_in_float"] - baseline
    return {"int8_miou": baseline, "layers": worst}


def _layer_errors(debugger) -> list[dict]:
    dump = io.StringIO()
    debugger.layer_statistics_dump(dump)
    dump.seek(0)
    rows = []
    for row in csv.DictReader(dump):
        scale = float(row["scale"])
        if not scale:
            continue
        rows.append(
            {
                "layer": _layer_name(row["tensor_name"]),
                "op": row["op_name"],
                "tensor": row["tensor_name"],
                "rmse_over_scale": float(np.sqrt(float(row["mean_squared_error"])) / scale),
                "max_abs_error": float(row["max_abs_error"]),
            }
        )
    return rows


def _layer_name(tensor_name: str) -> str:
    """`model/block3_project_conv/Conv2D` (the last of `;`-fused names) -> `block3_project_conv`."""
    parts = [part for part in tensor_name.split(";") if part][-1].split("/")
    return parts[1] if len(parts) > 2 else tensor_name
