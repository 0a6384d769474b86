"""Long-running use of the interpreter path, measuring resident memory as frames go by.

Example:
    >>> result = interpreter_soak(Path("runs/quickstart/model.tflite"), frames=10_000)
    >>> result["rss_growth_kib"]
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
    """Runs `frames` random camera frames through the `.tflite` as the demos do (predict + argmax).

    RSS is sampled `samples` times; growth is counted from the first sample, taken after warm-up
    frames, so one-time allocations do not count as a leak.
    """
    segmenter = TFLiteSegmenter(Path(model), threads=threads)
    frame_pool = np.random.default_rng(seed).integers(0, 256, (8, *segmenter.input_size, 3), dtype=np.uint8)
    every = max(1, frames // samples)
    rss = []
    for index in progress(range(frames), desc="soak", unit="frame"):
        segmenter.predict_labels(frame_pool[index % len(frame_pool)][None])
        if index % every == every - 1:
            rss.append(resident_kib())
    return {"model": str(model), "frames": frames, "threads": threads, "rss_kib": rss,
            "rss_growth_kib": rss[-1] - rss[0]}
