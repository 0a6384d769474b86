"""Checks a quickstart run against the figures the README states, as CI does after running it.

    python tools/check_quickstart.py [runs/quickstart] [--readme README.md]

The README gives the int8 mIoU the quickstart printed on the machine that measured it, and the range
that the same commit gave on CPUs whose float kernels differ (docs/BENCHMARKS.md, "Reproducibility").
Exit 0 when the run's int8 mIoU (4 digits, as printed) equals the stated figure, or lies within the
stated range (with a notice); exit 1 otherwise, naming both.
"""

import argparse
import json
import re
import sys
from pathlib import Path

STATED = re.compile(r"val mIoU on \d+ images: int8 \.tflite (\d\.\d{4}) vs float")
RANGE = re.compile(r"int8 mIoU from (\d\.\d{4}) to (\d\.\d{4})")

parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("run", nargs="?", default="runs/quickstart")
parser.add_argument("--readme", default=str(Path(__file__).resolve().parents[1] / "README.md"))
arguments = parser.parse_args()

readme = Path(arguments.readme).read_text()
stated, spread = STATED.search(readme), RANGE.search(readme)
if stated is None or spread is None:
    sys.exit(
        f"check_quickstart: {arguments.readme} states no quickstart int8 mIoU ('{STATED.pattern}') or range ('{RANGE.pattern}')"
    )
report = json.loads((Path(arguments.run) / "report.json").read_text())
verify = next(record for record in report["stages"] if record["stage"] == "verify")
measured = f"{verify['quantized']['miou']:.4f}"
low, high = spread.groups()
if measured == stated.group(1):
    print(f"check_quickstart: int8 mIoU {measured}, as the README states")
elif low <= measured <= high:
    print(
        f"check_quickstart: notice: int8 mIoU {measured}, not the README's {stated.group(1)} but within the range it "
        f"states for other CPUs ({low} to {high}); this machine: {report['environment']}"
    )
else:
    sys.exit(
        f"check_quickstart: int8 mIoU {measured} is neither the README's {stated.group(1)} nor within its range "
        f"{low} to {high}; this machine: {report['environment']}"
    )
