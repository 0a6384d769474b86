"""Where an int8 `.tflite`'s gzip bytes go (pruned and clustered kernels, other kernels, biases,
quantization scales and graph), for docs/BENCHMARKS.md: the file edgeseg made, and optionally the
same student quantized without pruning or clustering, split along the same layers.

    python tools/size_breakdown.py runs/camvid_full/05-quantize/model.tflite \
        runs/camvid_full/04-cluster/model.keras \
        --baseline /tmp/bench/runs/camvid_full-naive-s0/02-quantize/model.tflite --sparse-format

`--sparse-format` also converts the Keras model to int8 twice, as written and with TFLite's sparse
tensor encoding (`Optimize.EXPERIMENTAL_SPARSITY`), and compares their sizes. Both are calibrated
on the same 20 random images: calibration moves scales, not the encoding compared.
"""

import argparse
from pathlib import Path

import numpy as np

from edgeseg._keras import tf
from edgeseg.files import content_sizes
from edgeseg.kernels import compressed_layers, kernels_of
from edgeseg.markdown import table_head
from edgeseg.models.io import load_model
from edgeseg.quantization.converters import convert_int8, int8_converter
from edgeseg.quiet import native_output_silenced
from edgeseg.tflite import TFLiteSegmenter
from edgeseg.tflite_size import gzip_breakdown

PARTS = ("compressed_kernels", "other_kernels", "biases_scales_and_graph", "floor", "whole")

parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("tflite", type=Path, help="an int8 file made from a pruned and/or clustered model")
parser.add_argument("model", type=Path, help="the Keras model it was converted from (names the compressed layers)")
parser.add_argument("--baseline", type=Path, help="the same student quantized without pruning or clustering")
parser.add_argument("--sparse-format", action="store_true", help="compare TFLite's sparse tensor encoding")
arguments = parser.parse_args()

model = load_model(arguments.model)
layers = compressed_layers(model)
if not layers:
    parser.error(f"{arguments.model}: no layer is pruned or clustered, so there is nothing to split out")
weights = sum(kernel.size for kernel in kernels_of(model, layers).values())
files = {"edgeseg": arguments.tflite, **({"baseline": arguments.baseline} if arguments.baseline else {})}
rows = {label: gzip_breakdown(TFLiteSegmenter(path), layers) for label, path in files.items()}
reference = rows.get("baseline", rows["edgeseg"])["whole"]

print(
    f"{len(layers)} pruned or clustered layers, {weights:,} weights; gzip KiB (share of the "
    f"{'baseline' if arguments.baseline else 'file'}'s gzip)\n"
)
print("\n".join(table_head("file", *(part.replace("_", " ") for part in PARTS), "bits per compressed weight")))
for label, parts in rows.items():
    cells = " | ".join(f"{parts[part] / 1024:.1f} ({parts[part] / reference:.1%})" for part in PARTS)
    print(f"| {label} | {cells} | {8 * parts['compressed_kernels'] / weights:.2f} |")

if arguments.sparse_format:
    images = np.random.default_rng(0).uniform(0, 255, (20, *model.input_shape[1:])).astype(np.float32)
    dense = convert_int8(model, images)
    converter = int8_converter(model, images)
    converter.optimizations.append(tf.lite.Optimize.EXPERIMENTAL_SPARSITY)
    with native_output_silenced():
        sparse = converter.convert()
    print("\n| int8 encoding | bytes | gzip bytes |\n|---|---|---|")
    for label, content in (("dense (as edgeseg writes it)", dense), ("sparse (EXPERIMENTAL_SPARSITY)", sparse)):
        sizes = content_sizes(content)
        print(f"| {label} | {sizes['bytes']:,} | {sizes['gzip_bytes']:,} |")
