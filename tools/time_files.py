"""Interpreter latency of .tflite files timed alternately in one process, each as a ratio to the
first file's: load on the machine and drifting CPU clocks hit every file alike, so the ratios hold
where absolute times, taken one file after another, do not (`edgeseg.tflite.alternating_latency`).

    python tools/time_files.py runs/camvid_full-naive-s0/02-quantize/model.tflite \\
        runs/camvid_prune_wide_taylor-s*/03-quantize/model.tflite
"""

import argparse
from pathlib import Path

from edgeseg.errors import EdgesegError
from edgeseg.markdown import table_head
from edgeseg.tflite import alternating_latency

parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("files", nargs="+", type=Path, help=".tflite files; the first is the one the others are compared with")
parser.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="interpreter thread counts")
parser.add_argument("--rounds", type=int, default=20, help="alternating rounds of 10 invokes per file")
arguments = parser.parse_args()
contents = {}
for path in arguments.files:
    try:
        contents[str(path)] = path.read_bytes()
    except OSError as error:
        parser.error(f"{path}: {error.strerror}")
try:
    latency = alternating_latency(contents, tuple(arguments.threads), rounds=arguments.rounds)
except EdgesegError as error:
    parser.error(str(error))
first = latency[str(arguments.files[0])]
print("\n".join(table_head("file", "bytes", *(f"latency {count} thr" for count in arguments.threads))))
for name, row in latency.items():
    cells = [f"{row[str(count)]:.3f} ms ({row[str(count)] / first[str(count)]:.2f}x)" for count in arguments.threads]
    print(f"| {name} | {len(contents[name]):,} | " + " | ".join(cells) + " |")
