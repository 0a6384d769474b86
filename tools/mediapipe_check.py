"""Segment images with MediaPipe Tasks' ImageSegmenter and print what it read from an export, as JSON:
the check that the model's standard metadata is what MediaPipe understands.

    .venv-mediapipe/bin/python tools/mediapipe_check.py runs/quickstart scene.png frame.npy

Runs in an environment of its own with mediapipe (and its numpy) only, since mediapipe's
dependencies conflict with edgeseg's; so it imports nothing from edgeseg. Images are RGB .png files
or .npy arrays (uint8 [H, W, 3]) at the model's input size: MediaPipe resizes other sizes its own
way (bilinear with aligned corners), not as edgeseg's contract does.

Prints {"model": path, "labels": [class names], "category_masks": [one [H, W] list of class ids per
image, in order]}; MediaPipe's own warnings go to stderr.
"""

import argparse
import json
from pathlib import Path

import mediapipe as mp
import numpy as np
from mediapipe.tasks.python import BaseOptions
from mediapipe.tasks.python.vision import ImageSegmenter, ImageSegmenterOptions

parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("export", type=Path, help="a run folder with model.tflite, or a .tflite file")
parser.add_argument("images", type=Path, nargs="+", help="RGB images at the model's input size: .png, or .npy uint8 [H, W, 3]")
arguments = parser.parse_args()


def load_image(path: Path) -> mp.Image:
    if path.suffix == ".npy":
        return mp.Image(image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(np.load(path), dtype=np.uint8))
    return mp.Image.create_from_file(str(path))


model = arguments.export / "model.tflite" if arguments.export.is_dir() else arguments.export
options = ImageSegmenterOptions(base_options=BaseOptions(model_asset_path=str(model)), output_category_mask=True)
with ImageSegmenter.create_from_options(options) as segmenter:
    masks = []
    for path in arguments.images:
        image = load_image(path)
        mask = segmenter.segment(image).category_mask.numpy_view()
        masks.append(np.asarray(mask).reshape(image.height, image.width).tolist())
    print(json.dumps({"model": str(model), "labels": list(segmenter.labels), "category_masks": masks}))
