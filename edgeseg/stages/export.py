"""`export`: what an app needs, beside each other in the run folder, written atomically.

`model.tflite`, `labels.txt` (one class name per line, by id) and `edgeseg.json`, which says how
to feed the model and read its output. Both files are also embedded in the `.tflite` as named
metadata, so the model file alone describes itself.
"""

import json

import numpy as np

from edgeseg import __version__
from edgeseg.overlay import class_colors
from edgeseg.files import file_sizes, write_bytes_atomic, write_text_atomic
from edgeseg.stages.base import PipelineState, StageOutcome
from edgeseg.tflite import TFLiteSegmenter
from edgeseg.tflite_metadata import embed_metadata


def model_description(segmenter: TFLiteSegmenter, class_names, colors, ignore_index: int, recipe_hash: str) -> dict:
    """The content of `edgeseg.json`: the contract every demo and app reads."""
    output = segmenter.output
    scale, zero_point = output["quantization"]
    kind, postprocess = ("labels", "each value is a pixel's class id") if segmenter.outputs_labels \
        else ("logits", "argmax over the last axis gives class ids")
    return {
        "format": "edgeseg/1",
        "edgeseg_version": __version__,
        "recipe_hash": recipe_hash,
        "model": "model.tflite",
        "input": {
            "height": segmenter.input_size[0],
            "width": segmenter.input_size[1],
            "channels": 3,
            "color_order": "RGB",
            "dtype": np.dtype(segmenter.input["dtype"]).name,
            "quantization": {"scale": segmenter.input_quantization[0], "zero_point": segmenter.input_quantization[1]},
            "resize": "stretch the camera frame to height x width, bilinear",
        },
        "output": {
            "kind": kind,
            "shape": [int(d) for d in output["shape"]],
            "dtype": np.dtype(output["dtype"]).name,
            "quantization": {"scale": float(scale), "zero_point": int(zero_point)},
            "postprocess": postprocess,
        },
        "classes": [{"id": i, "name": n, "color": c} for i, (n, c) in enumerate(zip(class_names, colors))],
        "ignore_index": ignore_index,
    }


def apply(state: PipelineState, cfg, ctx) -> StageOutcome:
    """Writes the `.tflite`, labels and description to the run folder's top level."""
    segmenter = TFLiteSegmenter(state.tflite)
    colors = class_colors(ctx.num_classes, ctx.recipe.data.palette)
    description = model_description(segmenter, ctx.class_names, colors, ctx.ignore_index, ctx.recipe.hash)
    labels_text = "\n".join(ctx.class_names) + "\n"
    description_text = json.dumps(description, indent=2) + "\n"
    self_describing = embed_metadata(
        state.tflite, {"edgeseg.json": description_text.encode(), "labels.txt": labels_text.encode()}
    )
    model_path = write_bytes_atomic(ctx.run_dir / "model.tflite", self_describing)
    write_text_atomic(ctx.run_dir / "labels.txt", labels_text)
    write_text_atomic(ctx.run_dir / "edgeseg.json", description_text)
    record = {"files": ["model.tflite", "labels.txt", "edgeseg.json"], "model": str(model_path), **file_sizes(model_path)}
    return StageOutcome(state, record)
