"""The browser demo in a real headless Chromium, its camera a .y4m of synthetic scenes: the page's
LiteRT.js masks must match the Python interpreter's, and its input the export's contract.

Needs /usr/bin/chromium (`apt-get install -y chromium`) and LiteRT.js (`npm ci --prefix
edgeseg/demo/web`); without them the test is skipped, or fails when CI=true.
"""

import os

import numpy as np
import pytest

from edgeseg.contract import load_export
from edgeseg.data.synthetic import generate_scenes
from edgeseg.demo.headless import decode_y4m_frames, demo_page, missing_requirements, wait_for_frames, write_y4m
from edgeseg.overlay import overlay

# A 4:3 camera like a phone's, stretched 4x and 3x down to the 32x32 model: the page's scaling is exercised.
CAMERA_HEIGHT, CAMERA_WIDTH = 96, 128
SCENES = 4
MIN_MASK_AGREEMENT = 0.98
# The page's input against the contract applied to the frame as the camera delivers it (after the
# YUV round trip, decoded by OpenCV): browser and OpenCV differ only in integer rounding, of the
# YUV->RGB conversion (libyuv) and of the bilinear weights (Skia). Measured: mean 0.45, max 2.
MAX_DECODED_INPUT_ERROR = 3
# ... and against the contract applied to the scene itself: 4:2:0 keeps one color per 2x2 pixels,
# so colors bleed across shape edges (p99 15-45 levels there). Measured mean 2.7-4.5 over 8 scenes.
MAX_MEAN_SCENE_INPUT_ERROR = 6.0
# Another scene is far from the page's input (measured >= 51): the input is one whole camera frame.
MIN_MEAN_ERROR_TO_OTHER_SCENES = 20.0


@pytest.fixture(scope="session")  # session scope: checked before the session-scoped tiny_export is built
def browser_ready():
    missing = missing_requirements()
    if missing and os.environ.get("CI") == "true":
        pytest.fail("the browser demo test must run in CI: " + "; ".join(missing))
    if missing:
        pytest.skip("; ".join(missing))


@pytest.mark.parametrize("exported", ["tiny_export", "tiny_labels_export"])
def test_page_masks_agree_with_the_python_interpreter(browser_ready, exported, request, tmp_path):
    tiny_export = request.getfixturevalue(exported)
    export = load_export(tiny_export)
    scenes, _ = generate_scenes(SCENES, (CAMERA_HEIGHT, CAMERA_WIDTH), num_classes=4, seed=0, split="val")
    camera = write_y4m(tmp_path / "camera.y4m", scenes)

    with demo_page(tiny_export, camera) as page:
        frame = wait_for_frames(page, count=5)

    python_ids = export.class_ids(export.segmenter().predict_raw(frame.input_rgb))
    agreement = float((python_ids == frame.class_ids).mean())
    assert agreement >= MIN_MASK_AGREEMENT, f"LiteRT.js and the Python interpreter agree on {agreement:.2%} of pixels"

    as_captured = decode_y4m_frames(scenes)
    errors = np.stack([np.abs(export.preprocess(scene).astype(int) - frame.input_rgb) for scene in as_captured])
    shown = int(errors.mean(axis=(1, 2, 3)).argmin())
    others = [errors[i].mean() for i in range(SCENES) if i != shown]
    assert min(others) >= MIN_MEAN_ERROR_TO_OTHER_SCENES, f"the page's input is no single camera frame: {others}"
    assert errors[shown].max() <= MAX_DECODED_INPUT_ERROR, f"input differs from the contract by up to {errors[shown].max()}"
    scene_error = np.abs(export.preprocess(scenes[shown]).astype(int) - frame.input_rgb).mean()
    assert scene_error <= MAX_MEAN_SCENE_INPUT_ERROR, f"input differs from the scene by {scene_error:.2f} on average"

    # What the page drew: the camera frame with the mask, each class pixel a block of 4x3 on screen.
    mask_on_screen = python_ids.repeat(CAMERA_HEIGHT // python_ids.shape[0], 0).repeat(CAMERA_WIDTH // python_ids.shape[1], 1)
    expected_view = overlay(as_captured[shown], mask_on_screen, export.colors, alpha=0.5)
    view_error = np.abs(expected_view.astype(int) - frame.view_rgb)
    assert (view_error <= MAX_DECODED_INPUT_ERROR).mean() >= MIN_MASK_AGREEMENT, "the drawn overlay differs from edgeseg.overlay"
