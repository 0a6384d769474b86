"""What zoo models cost on this device before any training: MACs, parameters, int8 file bytes and
interpreter latency at 1 and 2 threads, the files timed alternately in one process (ratios to the
first model hold where absolute times drift with load).

    python tools/measure_costs.py lraspp-0.35 minimal-0.5-os32 lraspp-1.0:0.3 --input-size 192 256 --classes 11

A name is arch-alpha or arch-alpha-osN (MobileNetV2); `:F` after it removes channels to a fraction F
of its MACs, as prune_channels does (global allocation, l1 importance, round_to 8); `@HxW` after that
gives the model its own input size instead of --input-size (`lraspp-0.5:0.6@144x192`), so resolution
and channels are timed alternately in one process. --head-resolution
also times each model without its final upsampling of the logits (`NAME@head`): what removing
channels can never save.
"""

import argparse
import json
from pathlib import Path

from edgeseg.errors import EdgesegError
from edgeseg.measure import costs_markdown, zoo_costs

parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("models", nargs="+")
parser.add_argument("--input-size", type=int, nargs=2, default=[192, 256], metavar=("HEIGHT", "WIDTH"))
parser.add_argument("--classes", type=int, default=11)
parser.add_argument("--rounds", type=int, default=20, help="alternating rounds of 10 invokes per model")
parser.add_argument("--json", type=Path, help="also write the costs here")
parser.add_argument("--head-resolution", action="store_true", help="also each model without its final resize")
arguments = parser.parse_args()
try:
    costs = zoo_costs(
        arguments.models,
        tuple(arguments.input_size),
        arguments.classes,
        rounds=arguments.rounds,
        head_resolution=arguments.head_resolution,
    )
except EdgesegError as error:
    parser.error(str(error))
print(costs_markdown(costs))
if arguments.json:
    arguments.json.write_text(json.dumps(costs, indent=1))
