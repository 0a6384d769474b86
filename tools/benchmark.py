"""edgeseg recipes beside the naive path, on the same data, each under several seeds.

    python tools/benchmark.py recipes/camvid_full.yaml [more recipes ...] [--seeds 3] [--runs-dir runs]
                              [--family minimal-0.5-os32 lraspp-0.75 ...] [--no-naive] [--naive-only]
                              [--naive-from recipes/camvid_full.yaml]

The naive arm is made from the first recipe (its student, cross-entropy, default int8 PTQ), or
from --naive-from's when the recipes have no distill stage (a model trained alone, then pruned);
--family adds naive arms of other zoo models (arch-alpha or arch-alpha-osN), the naive family
`edgeseg search --naive` draws against its frontier; `@HxW` after one trains it at its own input
size (`lraspp-0.35@144x192`, folder data), the naive path at a lower resolution. Each
arm and seed is a run folder <runs-dir>/<recipe name>-s<seed> (the naive arm's recipe is named
<R>-naive, a family member's <R>-naive-<model> with `@` as `-`, R being the --naive-from recipe or else the first);
a killed benchmark resumes where it stopped. Every recipe, --naive-from's too, must have the first
one's data section; only the input size may differ (files are scored at each label's own
resolution, so a lower-resolution arm is held against the naive one on the same pixels).
Writes <runs-dir>/<first recipe>-benchmark/benchmark.json and benchmark.md and prints the tables.
See docs/BENCHMARKS.md for the rule a difference must pass.
"""

import argparse
import logging
import sys

import edgeseg
from edgeseg.benchmark import benchmark_markdown, run_benchmark


def positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1. Received: {text!r}")
    return int(text)


parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("recipes", nargs="+")
parser.add_argument("--seeds", type=positive, default=1, help="seeds per arm: the first recipe's seed and the next ones")
parser.add_argument("--runs-dir", default="runs")
parser.add_argument("--no-naive", action="store_true", help="without the naive arm (the --family arms still run)")
parser.add_argument("--family", nargs="*", default=[], help="naive arms of other zoo models: arch-alpha[-osN][@HxW]")
parser.add_argument("--naive-from", help="the recipe whose student the naive arms train (default: the first recipe)")
parser.add_argument("--naive-only", action="store_true", help="the naive arms only; the recipe gives them their settings")
arguments = parser.parse_args()
logging.basicConfig(level=logging.INFO, format="edgeseg: %(message)s", stream=sys.stderr)
try:
    recipes = [edgeseg.load_recipe(path) for path in arguments.recipes]
    seeds = [recipes[0].seed + offset for offset in range(arguments.seeds)]
    result = run_benchmark(
        recipes,
        seeds,
        arguments.runs_dir,
        naive=not arguments.no_naive,
        family=tuple(arguments.family),
        recipes_as_arms=not arguments.naive_only,
        naive_from=edgeseg.load_recipe(arguments.naive_from) if arguments.naive_from else None,
    )
except edgeseg.EdgesegError as error:
    print(f"benchmark: error: {error}", file=sys.stderr)
    sys.exit(error.exit_code)
print(benchmark_markdown(result))
print(f"written to {result['written_to']}/benchmark.json and benchmark.md")
