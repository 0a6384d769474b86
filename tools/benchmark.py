"""The naive path and an edgeseg recipe on the same data and seed, side by side (CamVid issue).

    python tools/benchmark.py recipes/camvid_quick.yaml [--runs-dir runs]

Writes <runs-dir>/<name>-benchmark/benchmark.json and benchmark.md and prints the tables; the
two runs' own folders (<name>-naive and <name>) keep every stage's artifacts and report.
"""

import argparse
import logging
import sys

import edgeseg
from edgeseg.benchmark import print_summary, run_benchmark

parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("recipe")
parser.add_argument("--runs-dir", default="runs")
arguments = parser.parse_args()
logging.basicConfig(level=logging.INFO, format="edgeseg: %(message)s", stream=sys.stderr)
try:
    print_summary(run_benchmark(edgeseg.load_recipe(arguments.recipe), arguments.runs_dir))
except edgeseg.EdgesegError as error:
    print(f"benchmark: error: {error}", file=sys.stderr)
    sys.exit(error.exit_code)
