"""Measure every zoo model (params, MACs, int8 size, interpreter latency, QAT) for docs/MODELS.md.

python tools/measure_zoo.py --input-size 256 256 --alpha 1.0 --out /tmp/zoo.md
"""

import argparse
from pathlib import Path

from edgeseg.zoo_measurements import measure_zoo, publish, zoo_markdown

parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("--input-size", type=int, nargs=2, default=[256, 256], metavar=("HEIGHT", "WIDTH"))
parser.add_argument("--alpha", type=float, default=1.0)
parser.add_argument("--out", type=Path, help="write the markdown table here (and the rows as .json beside it)")
arguments = parser.parse_args()
rows = measure_zoo(tuple(arguments.input_size), arguments.alpha)
command = f"python tools/measure_zoo.py --input-size {' '.join(map(str, arguments.input_size))} --alpha {arguments.alpha:g}"
publish(zoo_markdown(rows, command), rows, arguments.out)
