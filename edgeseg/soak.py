"""Long-running use of the interpreter path and of the desktop demo, resident memory sampled as frames go by.

Example:
    >>> interpreter_soak(Path("runs/quickstart/model.tflite"), frames=10_000)["rss_growth_kib"]
    0
    >>> demo_soak(Path("runs/quickstart"), frames=10_000)["rss_growth_kib"]
    0
"""

from pathlib import Path

import numpy as np

from edgeseg.progress import progress
from edgeseg.tflite import TFLiteSegmenter

def resident_kib() -> int:
    """This process's resident set size in KiB, from /proc."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("VmRSS missing from /proc/self/status")


def interpreter_soak(model: Path, frames: int = 10_000, threads: int = 2, samples: int = 10, seed: int = 0) -> dict:
    """Runs `frames` random frames at the model's size through the `.tflite` (predict + argmax), as `eval` does."""
    segmenter = TFLiteSegmenter(Path(model), threads=threads)
    pool = np.random.default_rng(seed).integers(0, 256, (8, *segmenter.input_size, 3), dtype=np.uint8)
    return {"model": str(model), "path": "interpreter", "threads": threads,
            **_sampled_rss(lambda index: segmenter.predict_labels(pool[index % len(pool)][None]), frames, samples)}


def demo_soak(export: Path, frames: int = 10_000, threads: int = 2, samples: int = 10, seed: int = 0) -> dict:
    """Runs `frames` random 640x480 camera frames through the desktop demo's whole frame path.

    That is resize, interpreter, argmax, mask upscaling, overlay and status bar: all but the
    window and the capture device, which a headless machine does not have.
    """
    from edgeseg.demo.contract import load_export
    from edgeseg.demo.desktop import CAMERA_FRAME_SIZE, DesktopDemo

    demo = DesktopDemo(load_export(export), threads)
    pool = np.random.default_rng(seed).integers(0, 256, (8, *CAMERA_FRAME_SIZE, 3), dtype=np.uint8)
    return {"model": str(export), "path": "desktop demo", "threads": threads,
            **_sampled_rss(lambda index: demo.render(pool[index % len(pool)], frame_seconds=0.01), frames, samples)}


def _sampled_rss(process_frame, frames: int, samples: int) -> dict:
    """Calls `process_frame(index)` `frames` times, sampling RSS `samples` times.

    Growth is counted from the first sample, taken after frames // samples frames, so one-time
    allocations do not count as a leak.
    """
    if not 2 <= samples <= frames:
        raise ValueError(f"a soak needs 2 <= samples <= frames. Received: samples={samples}, frames={frames}")
    every = frames // samples
    rss = []
    for index in progress(range(frames), desc="soak", unit="frame"):
        process_frame(index)
        if index % every == every - 1:
            rss.append(resident_kib())
    return {"frames": frames, "rss_kib": rss, "rss_growth_kib": rss[-1] - rss[0]}
