"""Soak the interpreter path, or the desktop demo's frame path: N frames, resident memory sampled as it goes.

python tools/soak_interpreter.py runs/quickstart/model.tflite --frames 10000
python tools/soak_interpreter.py runs/quickstart --demo --frames 10000
"""

import argparse
import json
import sys

from edgeseg.demo.desktop import demo_soak
from edgeseg.errors import EdgesegError
from edgeseg.soak import interpreter_soak

parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("model", help="a .tflite (interpreter path), or an export folder or .tflite with edgeseg.json (--demo)")
parser.add_argument("--demo", action="store_true", help="soak the desktop demo's frame path at 640x480")
parser.add_argument("--frames", type=int, default=10_000)
parser.add_argument("--threads", type=int, default=2)
arguments = parser.parse_args()
soak = demo_soak if arguments.demo else interpreter_soak
try:
    print(json.dumps(soak(arguments.model, arguments.frames, arguments.threads), indent=2))
except EdgesegError as error:
    print(f"soak_interpreter: error: {error}", file=sys.stderr)
    sys.exit(error.exit_code)
