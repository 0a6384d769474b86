"""MediaPipe Tasks' ImageSegmenter on an export: the class names it reads from the model's standard
metadata, no metadata warning, and category masks that match the Python interpreter's.

MediaPipe's dependencies conflict with edgeseg's, so tools/mediapipe_check.py runs it under the
python of an environment of its own: `EDGESEG_MEDIAPIPE_PYTHON`, by default .venv-mediapipe in the
repository, made with

    python3 -m venv .venv-mediapipe && .venv-mediapipe/bin/pip install mediapipe==1.2.3

Without it the test is skipped, or fails when CI=true.
"""

import json
import os
import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest

from edgeseg._keras import keras
from edgeseg.contract import load_export, write_export
from edgeseg.data.synthetic import generate_scenes
from edgeseg.quantization.converters import calibration_images, convert_int8
from tests.helpers import REPO

MEDIAPIPE_PYTHON = Path(os.environ.get("EDGESEG_MEDIAPIPE_PYTHON", REPO / ".venv-mediapipe" / "bin" / "python"))
SIZE = (32, 32)
CLASS_NAMES = ["background", "sky", "road", "person"]
COLORS = [[0, 0, 0], [70, 130, 180], [128, 64, 128], [220, 20, 60]]
SCENES = 4
# Scenes at the model's input size: MediaPipe resizes with aligned corners, edgeseg's contract does
# not, and at the same size nothing is resized. Measured: 100% of pixels agree.
MIN_MASK_AGREEMENT = 0.99


@pytest.fixture(scope="session")  # session scope: checked before the export is built
def mediapipe_python():
    if not MEDIAPIPE_PYTHON.is_file():
        missing = (
            f"no MediaPipe environment at {MEDIAPIPE_PYTHON} (python3 -m venv .venv-mediapipe && "
            ".venv-mediapipe/bin/pip install mediapipe==1.2.3, or set EDGESEG_MEDIAPIPE_PYTHON)"
        )
        if os.environ.get("CI") == "true":
            pytest.fail("the MediaPipe test must run in CI: " + missing)
        pytest.skip(missing)
    return MEDIAPIPE_PYTHON


@pytest.fixture(scope="module")
def color_export(tmp_path_factory):
    """The int8 export of a per-pixel color classifier with random weights: it gives several classes
    on every scene, where a briefly trained model (tiny_export) gives background everywhere."""
    keras.utils.set_random_seed(0)
    image = keras.Input((*SIZE, 3), name="image")
    normalized = keras.layers.Rescaling(1 / 127.5, offset=-1.0, name="normalize")(image)
    model = keras.Model(image, keras.layers.Conv2D(len(CLASS_NAMES), 1, name="logits")(normalized))
    calibration, _ = generate_scenes(8, SIZE, num_classes=len(CLASS_NAMES), seed=0, split="train")
    folder = tmp_path_factory.mktemp("color_export")
    tflite = convert_int8(model, calibration_images(calibration, 8, seed=0))
    write_export(folder, tflite, CLASS_NAMES, COLORS, ignore_index=255, recipe_hash="test")
    return folder


def test_mediapipe_reads_the_class_names_and_segments_as_the_interpreter_does(mediapipe_python, color_export, tmp_path):
    export = load_export(color_export)
    model = export.model_path
    scenes, _ = generate_scenes(SCENES, export.input_size, num_classes=len(export.class_names), seed=0, split="val")
    # The first scene as a PNG, the others as arrays: both formats the tool reads.
    paths = [tmp_path / "scene0.png"] + [tmp_path / f"scene{i}.npy" for i in range(1, SCENES)]
    cv2.imwrite(str(paths[0]), cv2.cvtColor(scenes[0], cv2.COLOR_RGB2BGR))
    for path, scene in zip(paths[1:], scenes[1:]):
        np.save(path, scene)

    completed = subprocess.run(
        [str(mediapipe_python), str(REPO / "tools" / "mediapipe_check.py"), str(model), *map(str, paths)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    found = json.loads(completed.stdout)

    assert found["labels"] == export.class_names
    assert [line for line in completed.stderr.splitlines() if "metadata" in line.lower()] == []
    segmenter = export.segmenter()
    python_ids = np.stack([export.class_ids(segmenter.predict_raw(scene)) for scene in scenes])
    assert len(np.unique(python_ids)) == len(CLASS_NAMES), "the scenes do not show every class: agreement would mean less"
    agreement = float((np.array(found["category_masks"]) == python_ids).mean())
    assert agreement >= MIN_MASK_AGREEMENT, f"MediaPipe and the Python interpreter agree on {agreement:.2%} of pixels"
