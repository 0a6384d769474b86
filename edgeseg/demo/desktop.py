"""The desktop demo: an export run on a camera, a video or a folder of images, with OpenCV.

Each frame goes through the contract of `edgeseg.contract` (stretch to the model's size,
uint8 RGB in, argmax out); the class ids are scaled back to the frame with nearest-neighbour and
blended over it. A status bar under the frame shows the class legend, FPS and inference time, so
the frame area itself carries nothing but the overlay.

Example::

    stats = run_demo("runs/quickstart", source="street.mp4", save="out.mp4", window=False)
    stats.frames, round(stats.mean_inference_ms, 2)
"""

import os
import shutil
import sys
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from edgeseg.contract import Export, load_export
from edgeseg.data.synthetic import SYNTHETIC_CLASS_NAMES, generate_scenes
from edgeseg.errors import EdgesegError
from edgeseg.files import partial_path
from edgeseg.images import IMAGE_SUFFIXES, read_rgb
from edgeseg.overlay import overlay
from edgeseg.progress import progress
from edgeseg.quiet import native_stderr_silenced
from edgeseg.soak import sampled_rss

VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv")
FONT = cv2.FONT_HERSHEY_SIMPLEX
ROW_HEIGHT = 18
LEGEND_MARGIN = 6
OVERLAY_ALPHA = 0.5
SYNTHETIC_SOURCE = "synthetic"
SYNTHETIC_FRAMES = 100
CAMERA_FRAME_SIZE = (480, 640)
MIN_SYNTHETIC_CLASSES = 4
WINDOW_TITLE = "edgeseg demo  (o: overlay on/off, q or Esc: quit)"


@dataclass(frozen=True)
class DemoStats:
    """What a demo run did: frames shown, and the mean time of the interpreter alone and of a whole frame."""

    frames: int
    mean_inference_ms: float
    mean_frame_ms: float

    @property
    def fps(self) -> float:
        return 1000.0 / self.mean_frame_ms if self.mean_frame_ms else 0.0


class DesktopDemo:
    """Segments RGB frames with an export and draws them, ready to show or save (BGR, for OpenCV)."""

    def __init__(self, export: Export, threads: int = 2):
        self.export = export
        self.segmenter = export.segmenter(threads=threads)
        self.show_overlay = True
        self.recent_frame_seconds: deque[float] = deque(maxlen=30)

    def class_ids(self, frame_rgb: np.ndarray) -> tuple[np.ndarray, float]:
        """Class ids [H, W] of the frame at the frame's own size, and the interpreter's milliseconds."""
        model_input = self.export.preprocess(frame_rgb)
        started = time.perf_counter()
        raw = self.segmenter.predict_raw(model_input)
        inference_ms = (time.perf_counter() - started) * 1000
        ids = self.export.class_ids(raw)
        height, width = frame_rgb.shape[:2]
        return cv2.resize(ids, (width, height), interpolation=cv2.INTER_NEAREST), inference_ms

    def render(self, frame_rgb: np.ndarray, frame_seconds: float | None = None) -> tuple[np.ndarray, float]:
        """The frame with its mask blended in and the status bar under it (BGR), and the inference ms."""
        ids, inference_ms = self.class_ids(frame_rgb)
        shown = (
            overlay(frame_rgb, ids, self.export.colors, OVERLAY_ALPHA, self.export.description["ignore_index"])
            if self.show_overlay
            else frame_rgb
        )
        if frame_seconds:
            self.recent_frame_seconds.append(frame_seconds)
        fps = len(self.recent_frame_seconds) / sum(self.recent_frame_seconds) if self.recent_frame_seconds else 0.0
        bar = self._status_bar(frame_rgb.shape[1], fps, inference_ms)
        return np.concatenate([shown, bar])[..., ::-1].copy(), inference_ms

    def _status_bar(self, width: int, fps: float, inference_ms: float) -> np.ndarray:
        """Legend entries wrapped into rows as wide as the frame, then a row with FPS and inference ms."""
        rows: list[list] = [[]]
        x = LEGEND_MARGIN
        for name, color in zip(self.export.class_names, self.export.colors):
            item_width = 20 + cv2.getTextSize(name, FONT, 0.4, 1)[0][0]
            if x + item_width > width and rows[-1]:
                rows.append([])
                x = LEGEND_MARGIN
            rows[-1].append((x, name, color))
            x += item_width + LEGEND_MARGIN
        bar = np.full((ROW_HEIGHT * (len(rows) + 1) + 4, width, 3), 32, np.uint8)
        for row, items in enumerate(rows):
            top = 4 + row * ROW_HEIGHT
            for left, name, color in items:
                cv2.rectangle(bar, (left, top + 2), (left + 12, top + 14), tuple(int(c) for c in color), thickness=-1)
                cv2.rectangle(bar, (left, top + 2), (left + 12, top + 14), (200, 200, 200), thickness=1)
                cv2.putText(bar, name, (left + 16, top + 13), FONT, 0.4, (230, 230, 230), 1, cv2.LINE_AA)
        status = f"{fps:.1f} FPS   {inference_ms:.2f} ms inference"
        cv2.putText(bar, status, (LEGEND_MARGIN, 4 + len(rows) * ROW_HEIGHT + 13), FONT, 0.4, (255, 255, 255), 1, cv2.LINE_AA)
        return bar


def run_demo(
    export_path, source="0", save: str | None = None, window: bool = True, threads: int = 2, max_frames: int | None = None
) -> DemoStats:
    """Runs the export at `export_path` on `source` until it ends, `max_frames`, or q/Esc.

    `source` is a camera index ("0"), a video file, a folder of images, or "synthetic" (100
    generated scenes like the quickstart's data at 640x480, for a machine without a camera). `save` writes what is
    shown: a video (`.mp4`, `.avi`, ...) or, for any other path, a folder of numbered PNG frames
    (lossless, so a frame's mask can be checked exactly).
    """
    if max_frames is not None and max_frames < 1:
        raise EdgesegError(f"demo: --max_frames must be at least 1. Received: max_frames={max_frames}")
    if threads < 1:
        raise EdgesegError(f"demo: --threads must be at least 1. Received: threads={threads}")
    if save is not None and Path(save).suffix and Path(save).suffix.lower() not in VIDEO_SUFFIXES:
        raise EdgesegError(
            f"demo: --save takes a video ({', '.join(VIDEO_SUFFIXES)}) or a folder for PNG frames. Received: save={save}"
        )
    export = load_export(export_path)
    if window and not _display_available():
        raise EdgesegError("demo: no display to open a window on; pass --no-window (with --save out.mp4 to keep the frames)")
    if not window and save is None and max_frames is None and _is_camera(source):
        raise EdgesegError("demo: --no-window on a camera without --save would run unseen forever; add --save or a display")
    demo = DesktopDemo(export, threads)
    frames, fps, total = _open_source(str(source), export)
    writer = None
    inference_total, shown = 0.0, 0
    first: float | None = None  # when the first frame arrived
    previous: float | None = None  # and the latest
    try:
        for frame_rgb in _until_interrupted(
            progress(frames, desc="demo", unit="frame", total=total if max_frames is None else max_frames)
        ):
            now = time.perf_counter()
            composed, inference_ms = demo.render(frame_rgb, frame_seconds=None if previous is None else now - previous)
            first, previous = now if first is None else first, now
            inference_total += inference_ms
            shown += 1
            if save is not None:
                writer = writer or _FrameWriter(Path(save), composed.shape[:2], fps)
                writer.write(composed)
            if window:
                cv2.imshow(WINDOW_TITLE, composed)
                key = cv2.waitKey(1) & 0xFF
                if key in (ord("q"), 27):
                    break
                if key == ord("o"):
                    demo.show_overlay = not demo.show_overlay
            if max_frames is not None and shown >= max_frames:
                break
    except BaseException:
        if writer is not None:
            writer.discard()
        raise
    finally:
        if window:
            cv2.destroyAllWindows()
    if writer is not None:
        writer.commit()
    if first is None or previous is None:
        raise EdgesegError(f"demo: no frames could be read from {source}")
    return DemoStats(shown, inference_total / shown, (previous - first) * 1000 / max(1, shown - 1))


def _until_interrupted(frames):
    """The frames until Ctrl-C, which ends the demo like q does."""
    try:
        yield from frames
    except KeyboardInterrupt:
        return


def _display_available() -> bool:
    return sys.platform in ("win32", "darwin") or bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def _is_camera(source) -> bool:
    return str(source).isdigit()


def _open_source(source, export: Export):
    """(RGB frame iterator, frames per second, frame count or None) for a camera, video, image folder or synthetic scenes."""
    if source == SYNTHETIC_SOURCE:
        # Drawn at the model's size and enlarged, so the model sees scenes like the quickstart's.
        classes = min(max(len(export.class_names), MIN_SYNTHETIC_CLASSES), len(SYNTHETIC_CLASS_NAMES))
        images, _ = generate_scenes(SYNTHETIC_FRAMES, export.input_size, classes, seed=0, split="demo")
        height, width = CAMERA_FRAME_SIZE
        return (cv2.resize(image, (width, height), interpolation=cv2.INTER_CUBIC) for image in images), 10.0, SYNTHETIC_FRAMES
    path = Path(str(source))
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise EdgesegError(f"demo: no images ({', '.join(IMAGE_SUFFIXES)}) in the folder. Received: source={source}")
        return (read_rgb(file) for file in files), 10.0, len(files)
    if not _is_camera(source) and not path.is_file():
        raise EdgesegError(
            f"demo: expected a camera index, a video file, a folder of images or '{SYNTHETIC_SOURCE}'. Received: source={source}"
        )
    with native_stderr_silenced():  # OpenCV and FFmpeg print their own warnings before failing
        capture = cv2.VideoCapture(int(source) if _is_camera(source) else str(path))
    if not capture.isOpened():
        raise EdgesegError(f"demo: cannot open the {'camera' if _is_camera(source) else 'video'}. Received: source={source}")
    count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) if not _is_camera(source) else 0
    return _captured_frames(capture), capture.get(cv2.CAP_PROP_FPS) or 30.0, count if count > 0 else None


def _captured_frames(capture):
    try:
        while True:
            ok, frame_bgr = capture.read()
            if not ok:
                return
            yield frame_bgr[..., ::-1]
    finally:
        capture.release()


class _FrameWriter:
    """A video file for video suffixes; otherwise a folder of frame_000000.png files.

    Frames go to a hidden partial file or folder beside the target, which `commit` moves into place
    once the demo has ended well; after a failure `discard` removes it, so an earlier good video or
    frame is never replaced by a partial one.
    """

    def __init__(self, path: Path, size: tuple[int, int], fps: float):
        self.path, self.size, self.count = path, size, 0
        self.partial = partial_path(path)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            if path.suffix.lower() in VIDEO_SUFFIXES:
                fourcc = cv2.VideoWriter.fourcc(*("mp4v" if path.suffix.lower() in (".mp4", ".mov") else "MJPG"))
                self.video: cv2.VideoWriter | None = cv2.VideoWriter(str(self.partial), fourcc, fps, (size[1], size[0]))
                if not self.video.isOpened():
                    raise EdgesegError(f"demo: cannot write the video. Received: save={path}")
            else:
                self.video = None
                shutil.rmtree(self.partial, ignore_errors=True)
                self.partial.mkdir()
        except OSError as error:
            raise EdgesegError(f"demo: cannot save there ({error.strerror or error}). Received: save={path}") from None

    def write(self, frame_bgr: np.ndarray) -> None:
        """Writes one shown frame; a frame of another size (images of mixed sizes) is scaled to the first's."""
        if frame_bgr.shape[:2] != self.size:
            frame_bgr = cv2.resize(frame_bgr, (self.size[1], self.size[0]), interpolation=cv2.INTER_AREA)
        if self.video is not None:
            self.video.write(frame_bgr)
        elif not cv2.imwrite(str(self.partial / f"frame_{self.count:06d}.png"), frame_bgr):
            raise EdgesegError(f"demo: cannot write frames into the folder. Received: save={self.path}")
        self.count += 1

    def commit(self) -> None:
        """Moves what was written into place: the video file, or each frame into the folder."""
        try:
            if self.video is not None:
                self.video.release()
                os.replace(self.partial, self.path)
                return
            self.path.mkdir(exist_ok=True)
            for frame in sorted(self.partial.iterdir()):
                os.replace(frame, self.path / frame.name)
            self.partial.rmdir()
        except OSError as error:
            raise EdgesegError(f"demo: cannot save there ({error.strerror or error}). Received: save={self.path}") from None

    def discard(self) -> None:
        """Removes what was written, leaving the target as it was."""
        if self.video is not None:
            self.video.release()
            self.partial.unlink(missing_ok=True)
        else:
            shutil.rmtree(self.partial, ignore_errors=True)


def demo_soak(export: Path, frames: int = 10_000, threads: int = 2, samples: int = 10, seed: int = 0) -> dict:
    """Runs `frames` random 640x480 camera frames through the desktop demo's whole frame path.

    That is resize, interpreter, argmax, mask upscaling, overlay and status bar: all but the
    window and the capture device, which a headless machine does not have.
    """
    demo = DesktopDemo(load_export(export), threads)
    pool = np.random.default_rng(seed).integers(0, 256, (8, *CAMERA_FRAME_SIZE, 3), dtype=np.uint8)
    return {
        "model": str(export),
        "path": "desktop demo",
        "threads": threads,
        **sampled_rss(lambda index: demo.render(pool[index % len(pool)], frame_seconds=0.01), frames, samples),
    }
