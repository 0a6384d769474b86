"""The pre/post-processing contract every demo and app shares, read from an export's `edgeseg.json`.

Camera frame (RGB uint8, any size) -> stretched to the model's height x width, bilinear -> fed as
is (the uint8 input maps raw 0..255 exactly) -> argmax over the logits' last axis (or, for
`output.kind: labels`, the output as is) -> class ids -> `classes[i].color`. The Android app and
the browser page implement the same steps.

Example:
    >>> export = load_export("runs/quickstart")
    >>> ids = export.class_ids(export.segmenter().predict_raw(export.preprocess(frame)))
"""

import json
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from edgeseg.errors import ModelError

# What an app must find in edgeseg.json: dotted paths into the JSON object.
REQUIRED_FIELDS = (
    "format", "model", "input.height", "input.width", "input.channels", "input.color_order", "input.dtype",
    "input.quantization.scale", "input.quantization.zero_point", "output.kind", "output.shape", "output.dtype",
    "output.quantization.scale", "output.quantization.zero_point", "classes", "ignore_index",
)
SUPPORTED_FORMAT = "edgeseg/1"


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
            raise ModelError(f"{self.model_path}: takes {segmenter.input_size[0]}x{segmenter.input_size[1]} images but its "
                             f"edgeseg.json describes another model. Received: input={self.input_size[0]}x{self.input_size[1]}")
        return segmenter


def load_export(path: str | Path) -> Export:
    """Reads an export: a run folder, or a `.tflite` with `edgeseg.json` beside it or embedded in it."""
    path = Path(path)
    model_path = path / "model.tflite" if path.is_dir() else path
    if not model_path.is_file():
        raise ModelError(f"expected a run folder with model.tflite or a .tflite file. Received: export={path}")
    beside = model_path.with_name("edgeseg.json")
    if beside.is_file():
        text, source = beside.read_text(), beside
    else:
        from edgeseg.tflite_metadata import read_metadata

        try:
            embedded = read_metadata(model_path.read_bytes()).get("edgeseg.json")
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
    if description["format"] != SUPPORTED_FORMAT:
        raise ModelError(f"{source}: expected format {SUPPORTED_FORMAT}. Received: format={description['format']!r}")
    return Export(model_path, description)


def missing_fields(description: dict) -> list[str]:
    """The REQUIRED_FIELDS absent from a parsed edgeseg.json."""
    return [dotted for dotted in REQUIRED_FIELDS if dotted_value(description, dotted) is None]


def dotted_value(description: dict, dotted: str):
    """`dotted_value(d, "input.quantization.scale")` is d["input"]["quantization"]["scale"], or None."""
    node = description
    for key in dotted.split("."):
        node = node.get(key) if isinstance(node, dict) else None
    return node
