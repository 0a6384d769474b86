"""Which float kernels this machine runs, op by op (`edgeseg.numerics.fingerprint`): a hash of eight
ops training uses, forward and backward, at the quickstart's and CamVid's feature-map sizes.

    python tools/kernel_fingerprint.py [--json this.json] [--compare other.json]

Two machines whose runs give different figures (docs/BENCHMARKS.md, "Reproducibility"): run it on
both, write one's `--json`, and `--compare` on the other, which names the ops computed differently.
"""

import argparse
import json
import sys
from pathlib import Path

from edgeseg._keras import numeric_environment
from edgeseg.markdown import table_head
from edgeseg.numerics import fingerprint

parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("--json", type=Path, help="write the environment and the hashes here")
parser.add_argument("--compare", type=Path, help="another machine's --json: name the ops that differ")
arguments = parser.parse_args()
other = None
if arguments.compare is not None:
    try:
        other = json.loads(arguments.compare.read_text())["hashes"]
    except (OSError, ValueError, KeyError, TypeError) as error:
        sys.exit(f"kernel_fingerprint: --compare {arguments.compare}: expected a file this tool wrote with --json ({error})")
result = {"environment": numeric_environment(), "hashes": fingerprint()}
print(f"environment: {result['environment']}")
print("\n".join(table_head("op", "hash", *(["other machine"] if other else []))))
for op, digest in result["hashes"].items():
    print(f"| {op} | {digest} |" + (f" {'same' if other.get(op) == digest else other.get(op, 'absent')} |" if other else ""))
if other is not None:
    differing = [op for op, digest in result["hashes"].items() if other.get(op) != digest]
    print(f"{len(differing)} of {len(result['hashes'])} ops differ" + (f": {', '.join(differing)}" if differing else ""))
if arguments.json is not None:
    arguments.json.write_text(json.dumps(result, indent=2) + "\n")
