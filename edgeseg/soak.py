"""Long-running use of the interpreter, resident memory sampled as frames go by (the desktop demo's
soak, `edgeseg.demo.desktop.demo_soak`, samples the same way).

Example::

    interpreter_soak(Path("runs/quickstart/model.tflite"), frames=10_000)["rss_growth_kib"]
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
    return {
        "model": str(model),
        "path": "interpreter",
        "threads": threads,
        **sampled_rss(lambda index: segmenter.predict_labels(pool[index % len(pool)][None]), frames, samples),
    }


def sampled_rss(process_frame, frames: int, samples: int) -> dict:
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
