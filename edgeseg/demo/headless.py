"""The browser demo in headless Chromium, its camera fed from a .y4m file: for the web demo's test
and `tools/web_demo_screenshot.py`.

Chromium's fake capture device plays a YUV4MPEG2 file in a loop as the camera; Playwright (the dev
extra) drives Debian's /usr/bin/chromium (no browser download).

Example::

    write_y4m(tmp_path / "camera.y4m", frames_rgb)
    with demo_page("runs/quickstart", tmp_path / "camera.y4m") as page:
        frame = wait_for_frames(page, count=3)
"""

from __future__ import annotations

import base64
import contextlib
import shutil
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from edgeseg.demo.web import LITERT_PACKAGE_DIR, WEB_DIR, make_server

CHROMIUM = Path("/usr/bin/chromium")
# Headless as root on a machine whose only network is localhost: no sandbox (root), no GPU, and no
# background connections (update checks, sync), which the closed network would refuse.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
INSTALL_HINTS = {
    "chromium": f"{CHROMIUM} is missing; install it with: apt-get install -y chromium",
    "litert": f"LiteRT.js is not installed in {WEB_DIR}; run: npm ci --prefix edgeseg/demo/web",
    "playwright": "the playwright package is missing; install the dev extras: pip install -e '.[dev]'",
}


def missing_requirements() -> list[str]:
    """One install hint for each thing the browser demo's test needs and this machine lacks."""
    missing = []
    if not CHROMIUM.is_file():
        missing.append(INSTALL_HINTS["chromium"])
    if not LITERT_PACKAGE_DIR.is_dir():
        missing.append(INSTALL_HINTS["litert"])
    try:
        import playwright  # noqa: F401
    except ImportError:
        missing.append(INSTALL_HINTS["playwright"])
    return missing


def write_y4m(path: Path, frames_rgb: np.ndarray, fps: int = 10) -> Path:
    """Writes RGB uint8 frames [N, H, W, 3] (H, W even) as a YUV4MPEG2 4:2:0 file, BT.601 limited range.

    BT.601 limited range is what Chromium assumes for the fake camera's I420 frames.
    """
    count, height, width = frames_rgb.shape[:3]
    if height % 2 or width % 2:
        raise ValueError(f"4:2:0 needs an even frame size. Received: {height}x{width}")
    with open(path, "wb") as file:
        file.write(f"YUV4MPEG2 W{width} H{height} F{fps}:1 Ip A1:1 C420jpeg\n".encode())
        for frame in frames_rgb:
            file.write(b"FRAME\n")
            file.write(cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_RGB2YUV_I420).tobytes())
    return path


def decode_y4m_frames(frames_rgb: np.ndarray) -> np.ndarray:
    """The frames as a camera reading `write_y4m`'s file sees them: RGB after the YUV 4:2:0 round trip."""
    return np.stack(
        [
            cv2.cvtColor(cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_RGB2YUV_I420), cv2.COLOR_YUV2RGB_I420)
            for frame in frames_rgb
        ]
    )


@dataclass
class DemoFrame:
    """What the page showed for one camera frame: the model's input, its class ids and the page's counters."""

    input_rgb: np.ndarray  # [H, W, 3] uint8, what the page fed the model
    class_ids: np.ndarray  # [H, W] uint8, argmax of the model's output
    view_rgb: np.ndarray  # [camera height, camera width, 3] uint8, the frame and overlay as drawn
    frames: int
    fps: float
    inference_ms: float


@contextlib.contextmanager
def demo_page(export_path: str | Path, y4m_path: Path, viewport: tuple[int, int] = (640, 480)):
    """The demo page of `export_path` open in headless Chromium with `y4m_path` as its camera.

    Serves the page on a free localhost port for the duration; yields the Playwright page.
    """
    from playwright.sync_api import sync_playwright

    server = make_server(export_path, port=0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    camera_args = [
        "--use-fake-device-for-media-stream",
        "--use-fake-ui-for-media-stream",
        f"--use-file-for-fake-video-capture={Path(y4m_path).resolve()}",
    ]
    # A fresh profile each time: nothing cached or granted from an earlier run.
    profile = tempfile.mkdtemp(prefix="edgeseg-chromium-")
    try:
        with sync_playwright() as playwright:
            context = playwright.chromium.launch_persistent_context(
                profile,
                executable_path=str(CHROMIUM),
                headless=True,
                args=CHROMIUM_ARGS + camera_args,
                viewport={"width": viewport[0], "height": viewport[1]},
            )
            try:
                page = context.pages[0] if context.pages else context.new_page()
                page.goto(f"http://127.0.0.1:{server.server_address[1]}/")
                yield page
            finally:
                context.close()
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
        shutil.rmtree(profile, ignore_errors=True)


def wait_for_frames(page, count: int, timeout_s: float = 60) -> DemoFrame:
    """Waits until the page has segmented `count` camera frames and returns its last one.

    Raises AssertionError with the page's own error message if it shows one first.
    """
    page.wait_for_function(
        f"(window.edgeseg && (window.edgeseg.error || window.edgeseg.frames >= {count}))"
        " || !document.getElementById('error').hidden",
        timeout=timeout_s * 1000,
        polling=100,
    )
    shown_error = page.evaluate("document.getElementById('error').hidden ? null : document.getElementById('error').textContent")
    assert shown_error is None, f"the demo page shows an error: {shown_error}"
    return read_last_frame(page)


def read_last_frame(page) -> DemoFrame:
    """The page's last segmented frame, read in one step so its input, ids and drawing belong together.

    The page draws a frame and updates `window.edgeseg` in one task, so one evaluate sees a consistent set.
    """
    state = page.evaluate(
        """() => {
            // Base64 strings: a JSON list of a 640x480 frame's bytes takes seconds to pass to Python.
            const base64 = (bytes) => {
                let text = '';
                for (let start = 0; start < bytes.length; start += 0x8000) {
                    text += String.fromCharCode.apply(null, bytes.subarray(start, start + 0x8000));
                }
                return btoa(text);
            };
            const {edgeseg} = window;
            const view = document.getElementById('view');
            const drawn = view.getContext('2d').getImageData(0, 0, view.width, view.height).data;
            return {input: base64(edgeseg.lastInput), mask: base64(edgeseg.lastMask),
                    view: base64(drawn), viewHeight: view.height, viewWidth: view.width,
                    frames: edgeseg.frames, fps: edgeseg.fps, inferenceMs: edgeseg.inferenceMs};
        }"""
    )
    description = page.evaluate("fetch('edgeseg.json').then((response) => response.json())")
    height, width = description["input"]["height"], description["input"]["width"]
    return DemoFrame(
        input_rgb=bytes_from_base64(state["input"]).reshape(height, width, 3),
        class_ids=bytes_from_base64(state["mask"]).reshape(height, width),
        view_rgb=bytes_from_base64(state["view"]).reshape(state["viewHeight"], state["viewWidth"], 4)[..., :3],
        frames=state["frames"],
        fps=state["fps"],
        inference_ms=state["inferenceMs"],
    )


def bytes_from_base64(text: str) -> np.ndarray:
    return np.frombuffer(base64.b64decode(text), np.uint8)
