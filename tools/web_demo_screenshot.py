"""Screenshot of the browser demo in headless Chromium, its camera a synthetic scene; prints the
page's FPS and inference time, and how far its last mask agrees with the Python interpreter's.

The scene is drawn at the model's input size (what it was trained on) and enlarged to the camera
size, so the page shows a large camera frame whose 64x64 view is close to the training scenes.

    python tools/web_demo_screenshot.py runs/quickstart --output docs/web_demo.png

Needs /usr/bin/chromium and `npm ci --prefix edgeseg/demo/web`, like tests/e2e/test_web_demo.py.
"""

import argparse
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from edgeseg.contract import load_export
from edgeseg.data.synthetic import generate_scenes
from edgeseg.demo.headless import demo_page, read_last_frame, wait_for_frames, write_y4m

parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("run", help="run folder or .tflite of an export")
parser.add_argument("--output", default="docs/web_demo.png")
parser.add_argument("--scene", type=int, default=0, help="index of the synthetic validation scene shown")
parser.add_argument("--camera-size", type=int, default=480, help="side of the square camera frame, pixels")
parser.add_argument("--camera-fps", type=int, default=30)
parser.add_argument("--viewport", default="800x560", help="browser window WIDTHxHEIGHT")
parser.add_argument("--seconds", type=float, default=5.0, help="how long the page runs before the screenshot")
arguments = parser.parse_args()

export = load_export(arguments.run)
scenes, _ = generate_scenes(arguments.scene + 1, export.input_size, len(export.class_names), seed=0, split="val")
frame = cv2.resize(scenes[-1], (arguments.camera_size, arguments.camera_size), interpolation=cv2.INTER_CUBIC)
viewport_width, viewport_height = (int(side) for side in arguments.viewport.split("x"))

with tempfile.TemporaryDirectory() as folder:
    # One second of the same scene; Chromium's fake camera loops it at the stated rate.
    camera = write_y4m(Path(folder) / "camera.y4m", np.repeat(frame[None], arguments.camera_fps, 0), arguments.camera_fps)
    with demo_page(arguments.run, camera, viewport=(viewport_width, viewport_height)) as page:
        wait_for_frames(page, count=1)
        time.sleep(arguments.seconds)
        page.screenshot(path=arguments.output)
        shown = read_last_frame(page)

python_ids = export.class_ids(export.segmenter().predict_raw(shown.input_rgb))
print(
    f"{arguments.output}: {shown.frames} frames segmented; over the last 30: {shown.fps:.1f} FPS, inference "
    f"{shown.inference_ms:.1f} ms (camera {arguments.camera_size}x{arguments.camera_size} at {arguments.camera_fps} fps); "
    f"last mask agrees with the Python interpreter on {(python_ids == shown.class_ids).mean():.2%} of pixels"
)
