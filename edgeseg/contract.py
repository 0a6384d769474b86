"""The export contract: what an export's files are, what `edgeseg.json` says, its writer and its reader.

An export is `model.tflite`, `labels.txt` (one class name per line, by id) and `edgeseg.json` (how to
feed the model and read its output), side by side; both text files are also embedded in the
`.tflite` as named metadata, so the model file alone describes itself. The `export` stage writes
them with `write_export`; every demo, `edgeseg eval` and the Android app read them back
(`load_export`, and the Kotlin `ModelContract.kt`, checked against `REQUIRED_FIELDS`).

Camera frame (RGB uint8, any size) -> stretched to the model's height x width, bilinear -> fed as
is (the uint8 input maps raw 0..255 exactly) -> argmax over the logits' last axis (or, for
`output.kind: labels`, the output as is) -> class ids -> `classes[i].color`. The Android app and
the browser page implement the same steps.

Example::

    export = load_export("runs/quickstart")
    ids = export.class_ids(export.segmenter().predict_raw(export.preprocess(frame)))
"""

import json
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from edgeseg.errors import ModelError
from edgeseg.files import file_sizes, write_bytes_atomic, write_text_atomic
from edgeseg.version import __version__

FORMAT = "edgeseg/1"
MODEL_FILE, LABELS_FILE, DESCRIPTION_FILE = "model.tflite", "labels.txt", "edgeseg.json"
EXPORTED_FILES = (MODEL_FILE, LABELS_FILE, DESCRIPTION_FILE)

# What an app must find in edgeseg.json: dotted paths into the JSON object.
REQUIRED_FIELDS = (
    "format",
    "model",
    "input.height",
    "input.width",
    "input.channels",
    "input.color_order",
    "input.dtype",
    "input.quantization.scale",
    "input.quantization.zero_point",
    "output.kind",
    "output.shape",
    "output.dtype",
    "output.quantization.scale",
    "output.quantization.zero_point",
    "classes",
    "ignore_index",
)


@dataclass(frozen=True)
class Export:
    """An exported model and its description: what a demo needs to run it on camera frames."""

    model_path: Path
    description: dict

    @property
    def input_size(self) -> tuple[int, int]:
        return self.description["input"]["height"], self.description["input"]["width"]

    @property
    def class_names(self) -> list[str]:
        return [entry["name"] for entry in self.description["classes"]]

    @property
    def colors(self) -> list[list[int]]:
        return [entry["color"] for entry in self.description["classes"]]

    def preprocess(self, frame_rgb: np.ndarray) -> np.ndarray:
        """The frame stretched to the model's input size with bilinear interpolation, RGB uint8."""
        height, width = self.input_size
        if frame_rgb.shape[:2] == (height, width):
            return np.ascontiguousarray(frame_rgb, dtype=np.uint8)
        return cv2.resize(frame_rgb, (width, height), interpolation=cv2.INTER_LINEAR).astype(np.uint8)

    @staticmethod
    def class_ids(raw_output: np.ndarray) -> np.ndarray:
        """Class ids [H, W] from the raw output: logits [H, W, C] by argmax, which needs no
        dequantization (scale > 0); a `labels` output [H, W] is the class ids already."""
        return raw_output if raw_output.ndim == 2 else raw_output.argmax(axis=-1).astype(np.uint8)

    def segmenter(self, threads: int = 2):
        """The interpreter for the model, checked to take the input size edgeseg.json describes."""
        from edgeseg.tflite import TFLiteSegmenter

        segmenter = TFLiteSegmenter(self.model_path, threads=threads)
        if segmenter.input_size != self.input_size:
            raise ModelError(
                f"{self.model_path}: takes {segmenter.input_size[0]}x{segmenter.input_size[1]} images but its "
                f"edgeseg.json describes another model. Received: input={self.input_size[0]}x{self.input_size[1]}"
            )
        return segmenter


def model_description(segmenter, class_names, colors, ignore_index: int, recipe_hash: str) -> dict:
    """The content of `edgeseg.json`: the contract every demo and app reads."""
    output = segmenter.output
    scale, zero_point = output["quantization"]
    kind, postprocess = (
        ("labels", "each value is a pixel's class id")
        if segmenter.outputs_labels
        else ("logits", "argmax over the last axis gives class ids")
    )
    return {
        "format": FORMAT,
        "edgeseg_version": __version__,
        "recipe_hash": recipe_hash,
        "model": MODEL_FILE,
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


def write_export(folder: Path, tflite: bytes, class_names, colors, ignore_index: int, recipe_hash: str) -> dict:
    """Writes an export's three files into `folder`, each to a temporary name and renamed; returns
    the export stage's record (file names, model path, sizes)."""
    from edgeseg.tflite import TFLiteSegmenter
    from edgeseg.tflite_metadata import embed_metadata

    description = model_description(TFLiteSegmenter(tflite), class_names, colors, ignore_index, recipe_hash)
    labels_text = "\n".join(class_names) + "\n"
    description_text = json.dumps(description, indent=2) + "\n"
    self_describing = embed_metadata(tflite, {DESCRIPTION_FILE: description_text.encode(), LABELS_FILE: labels_text.encode()})
    if description["output"]["kind"] == "logits":  # MediaPipe misreads a class-id output; that keeps edgeseg's metadata only
        from edgeseg.standard_metadata import embed_standard_metadata

        # Last: the standard labels file follows the flatbuffer, and rewriting the model would drop it.
        self_describing = embed_standard_metadata(self_describing, class_names, recipe_hash)
    model_path = write_bytes_atomic(folder / MODEL_FILE, self_describing)
    write_text_atomic(folder / LABELS_FILE, labels_text)
    write_text_atomic(folder / DESCRIPTION_FILE, description_text)
    return {"files": list(EXPORTED_FILES), "model": str(model_path), **file_sizes(model_path)}


def load_export(path: str | Path) -> Export:
    """Reads an export: a run folder, or a `.tflite` with `edgeseg.json` beside it or embedded in it."""
    path = Path(path)
    model_path = path / MODEL_FILE if path.is_dir() else path
    if not model_path.is_file():
        raise ModelError(f"expected a run folder with model.tflite or a .tflite file. Received: export={path}")
    beside = model_path.with_name(DESCRIPTION_FILE)
    if beside.is_file():
        text, source = beside.read_text(), beside
    else:
        from edgeseg.tflite_metadata import read_metadata

        try:
            embedded = read_metadata(model_path.read_bytes()).get(DESCRIPTION_FILE)
        except Exception:  # the flatbuffer reader fails in many ways on a file that is not a .tflite
            raise ModelError(f"{model_path}: not a .tflite model, and no edgeseg.json beside it") from None
        if embedded is None:
            raise ModelError(f"{model_path}: no edgeseg.json beside it or embedded in it; export it with edgeseg")
        text, source = embedded.decode(), model_path
    try:
        description = json.loads(text)
    except json.JSONDecodeError as error:
        raise ModelError(f"{source}: not valid JSON ({error})") from None
    missing = missing_fields(description)
    if missing:
        raise ModelError(f"{source}: edgeseg.json lacks {', '.join(missing)}")
    if description["format"] != FORMAT:
        raise ModelError(f"{source}: expected format {FORMAT}. Received: format={description['format']!r}")
    return Export(model_path, description)


def missing_fields(description: dict) -> list[str]:
    """The REQUIRED_FIELDS absent from a parsed edgeseg.json."""
    return [dotted for dotted in REQUIRED_FIELDS if dotted_value(description, dotted) is None]


def dotted_value(description: dict, dotted: str):
    """`dotted_value(d, "input.quantization.scale")` is d["input"]["quantization"]["scale"], or None."""
    node: object = description
    for key in dotted.split("."):
        node = node.get(key) if isinstance(node, dict) else None
    return node
