"""Peak memory of `edgeseg eval` scoring one large label, for docs/RELIABILITY.md.

    python tools/measure_scoring_memory.py [--side 4000] [--classes 11] [--edgeseg PATH]

Writes a dataset of one SIDE x SIDE image and label and a small float .tflite with CLASSES outputs
into a temporary folder, runs `python -m edgeseg eval` on it in a child process (with PATH first
on its PYTHONPATH when given, e.g. a worktree of an older commit, to measure before a change) and
prints the child's peak resident memory and that memory per label pixel.
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

from edgeseg._keras import keras
from edgeseg.quantization.converters import convert_float

parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("--side", type=int, default=4000)
parser.add_argument("--classes", type=int, default=11)
parser.add_argument("--edgeseg", help="a checkout whose edgeseg the child process imports")
arguments = parser.parse_args()

with tempfile.TemporaryDirectory() as folder:
    root = Path(folder) / "data"
    for kind in ("images", "labels"):
        (root / "val" / kind).mkdir(parents=True)
    side = arguments.side
    rng = np.random.default_rng(0)
    cv2.imwrite(str(root / "val" / "images" / "large.png"), rng.integers(0, 256, (side, side, 3), dtype=np.uint8))
    label = (np.arange(side)[:, None] * arguments.classes // side).repeat(side, axis=1).astype(np.uint8)
    cv2.imwrite(str(root / "val" / "labels" / "large.png"), label)
    (root / "dataset.json").write_text(json.dumps({"classes": [f"class{i}" for i in range(arguments.classes)]}))
    keras.utils.set_random_seed(0)
    image = keras.Input((64, 64, 3))
    model = keras.Model(image, keras.layers.Conv2D(arguments.classes, 1)(keras.layers.Rescaling(1 / 255)(image)))
    model_path = Path(folder) / "model.tflite"
    model_path.write_bytes(convert_float(model))
    paths = [arguments.edgeseg] if arguments.edgeseg else []
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(paths + [os.environ.get("PYTHONPATH", "")])}
    # cwd: the temporary folder, since `python -m` puts the working folder before PYTHONPATH.
    done = subprocess.run(
        [sys.executable, "-m", "edgeseg", "eval", str(model_path), "--data", str(root)],
        env=env,
        capture_output=True,
        text=True,
        cwd=folder,
    )
    if done.returncode != 0:
        sys.exit(f"measure_scoring_memory: eval failed: {done.stderr.strip().splitlines()[-1]}")
peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
print(
    f"{side}x{side} label, {arguments.classes} classes: peak resident memory of eval {peak_kib / 1024:.0f} MiB "
    f"({peak_kib * 1024 / side / side:.0f} bytes per label pixel, the process's own start-up included)"
)
print(done.stdout.strip().splitlines()[0])
