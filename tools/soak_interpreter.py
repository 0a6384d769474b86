"""Soak the interpreter path: N frames through a `.tflite`, resident memory sampled as it goes.

    python tools/soak_interpreter.py runs/quickstart/model.tflite --frames 10000
"""

import argparse
import json

from edgeseg.soak import interpreter_soak

parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("model")
parser.add_argument("--frames", type=int, default=10_000)
parser.add_argument("--threads", type=int, default=2)
arguments = parser.parse_args()
print(json.dumps(interpreter_soak(arguments.model, arguments.frames, arguments.threads), indent=2))
