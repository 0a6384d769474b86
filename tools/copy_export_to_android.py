"""Copy an edgeseg export into the Android demo's assets, checked against what the app reads.

    python tools/copy_export_to_android.py runs/quickstart
    python tools/copy_export_to_android.py runs/quickstart/model.tflite --app path/to/android_demo

Then build and install the app (android_demo/README.md).
"""

import argparse
import sys
from pathlib import Path

from edgeseg.demo.android import copy_export_to_app
from edgeseg.errors import EdgesegError

parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("export", help="a run folder with model.tflite and edgeseg.json, or a .tflite file")
parser.add_argument(
    "--app",
    type=Path,
    default=Path(__file__).resolve().parents[1] / "android_demo",
    help="the Android project to copy into (default: this repository's android_demo)",
)
arguments = parser.parse_args()
try:
    copied = copy_export_to_app(arguments.export, arguments.app)
except EdgesegError as error:
    print(f"copy_export_to_android: error: {error}", file=sys.stderr)
    sys.exit(error.exit_code)
for path in copied:
    print(f"copied {path}")
