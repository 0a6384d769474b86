"""Where a `.tflite` file's gzip bytes go, and what pruning and clustering could still save.

Measured on the file itself: it is gzipped whole, then with the pruned and clustered kernels set
to zeros, then with every kernel set to zeros. What is left at the end (int32 biases, per-channel
quantization scales and zero points, the graph) no kernel compression touches.

Example::

    parts = gzip_breakdown(TFLiteSegmenter(Path("model.tflite")), compressed_layers(float_model))
    parts["floor"] == parts["other_kernels"] + parts["biases_scales_and_graph"]
"""

from typing import TYPE_CHECKING

from edgeseg.files import content_sizes

if TYPE_CHECKING:
    from edgeseg.tflite import TFLiteSegmenter


def gzip_breakdown(segmenter: "TFLiteSegmenter", compressed_layers: list[str]) -> dict:
    """The file's gzip size split into its pruned and clustered kernels (`compressed_layers`), its
    other kernels and the rest; `floor` is the gzip size with the compressed kernels all zeros,
    which no more pruning or clustering of those layers can go below."""
    whole = _gzip_bytes(segmenter.content)
    floor = _gzip_bytes(segmenter.with_kernels_zeroed(compressed_layers))
    bare = _gzip_bytes(segmenter.with_kernels_zeroed())
    return {
        "whole": whole,
        "compressed_kernels": whole - floor,
        "other_kernels": floor - bare,
        "biases_scales_and_graph": bare,
        "floor": floor,
    }


def _gzip_bytes(content: bytes) -> int:
    return content_sizes(content)["gzip_bytes"]
