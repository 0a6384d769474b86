"""What compression left in a kernel: zeros, distinct values per output channel, m:n groups, counted
the same way for a Keras model and for the kernels read back from a `.tflite`.

Example:
    >>> import numpy as np
    >>> max_values_per_channel(np.array([[1.0, 2.0], [1.0, 3.0]]))   # channels on the last axis
    2
    >>> compression(np.array([[0.0, 2.0], [0.0, 2.0], [1.0, 2.0], [1.0, 2.0]]))
    Compression(zeros=0.25, values_per_channel=2, pruned=True, clustered=False)
"""

from collections.abc import Iterable, Iterator
from typing import Any, NamedTuple

import numpy as np


class Compression(NamedTuple):
    """A kernel's fraction of zeros and most values in one output channel, and whether that makes it
    pruned (some exact zeros, which training never makes) and clustered (fewer values per output
    channel than half its weights)."""

    zeros: float
    values_per_channel: int
    pruned: bool
    clustered: bool


def max_values_per_channel(weights: np.ndarray, channel_axis: int = -1) -> int:
    """The most distinct values any one output channel (a slice along `channel_axis`) holds."""
    channels = np.moveaxis(weights, channel_axis, 0).reshape(weights.shape[channel_axis], -1)
    return max(int(np.unique(channel).size) for channel in channels)


def compression(kernel: np.ndarray) -> Compression:
    """What pruning and clustering left in `kernel` (output channels on the last axis)."""
    zeros, unique = float(np.mean(kernel == 0)), max_values_per_channel(kernel)
    return Compression(zeros, unique, zeros > 0.01, unique < kernel.size / kernel.shape[-1] / 2)


def layer_kernel(layer: Any) -> np.ndarray | None:
    """A Keras layer's kernel with output channels on the last axis, or None if it has none.

    A depthwise kernel [h, w, in, multiplier] becomes [h, w, in * multiplier], its output channels.
    """
    if getattr(layer, "depthwise_kernel", None) is not None:
        kernel = layer.depthwise_kernel.numpy()
        return kernel.reshape(*kernel.shape[:2], -1)
    kernel = getattr(layer, "kernel", None)
    return None if kernel is None else kernel.numpy()


def layers_with_kernels(model: Any) -> Iterator[tuple[Any, np.ndarray]]:
    """(layer, kernel) for each layer of `model` that has a kernel."""
    for layer in model.layers:
        kernel = layer_kernel(layer)
        if kernel is not None:
            yield layer, kernel


def kernels_of(model: Any, names: Iterable[str]) -> dict[str, np.ndarray]:
    """Kernel arrays of the named layers, by layer name."""
    wanted = set(names)
    return {layer.name: kernel for layer, kernel in layers_with_kernels(model) if layer.name in wanted}


def compression_of(model: Any) -> tuple[bool, bool]:
    """Whether any kernel of `model` is pruned, and whether any is clustered."""
    found = [compression(kernel) for _, kernel in layers_with_kernels(model)]
    return any(c.pruned for c in found), any(c.clustered for c in found)


def compressed_layers(model: Any) -> list[str]:
    """Names of the layers whose kernel is pruned or clustered."""
    return [
        layer.name for layer, kernel in layers_with_kernels(model) if (found := compression(kernel)).pruned or found.clustered
    ]


def sparsity(kernels: dict[str, np.ndarray]) -> float:
    """Fraction of exact zeros across all given kernels."""
    total = sum(k.size for k in kernels.values())
    return float(sum(np.count_nonzero(k == 0) for k in kernels.values()) / total) if total else 0.0


def layer_sparsity(kernels: dict[str, np.ndarray]) -> dict[str, float]:
    """Fraction of exact zeros in each kernel, rounded for the report."""
    return {name: round(float(np.mean(kernel == 0)), 4) for name, kernel in kernels.items()}


def unique_values(kernels: dict[str, np.ndarray], per_channel: bool = False) -> dict[str, int]:
    """Distinct values in each kernel, or, `per_channel`, the most any one output channel holds."""
    if per_channel:
        return {name: max_values_per_channel(kernel) for name, kernel in kernels.items()}
    return {name: int(np.unique(kernel).size) for name, kernel in kernels.items()}


def m_by_n_violations(kernels: dict[str, np.ndarray], m_by_n: tuple[int, int]) -> list[str]:
    """Kernels with a group of n consecutive input weights (per output channel, as TFLite lays
    them out) holding fewer than m zeros."""
    m, n = m_by_n
    broken = []
    for name, kernel in kernels.items():
        by_channel = np.moveaxis(kernel, -1, 0).reshape(kernel.shape[-1], -1, kernel.shape[-2])
        groups = by_channel.reshape(*by_channel.shape[:2], -1, n)
        if np.any(np.count_nonzero(groups == 0, axis=-1) < m):
            broken.append(name)
    return broken


def compression_kept(model: Any, stored_kernels: dict[str, dict]) -> dict:
    """Checks, layer by layer, that the `.tflite` kernels keep the Keras kernels' zeros and clusters.

    `stored_kernels` is `TFLiteSegmenter.kernel_stats`: per layer name, the file's fraction of zeros
    and most values per output channel. Quantization can only add zeros and merge values: a pruned
    zero maps to 0 and a channel's k clustered values (scaled per channel when BatchNorm is folded
    in) to at most k integers. A layer with fewer zeros or more values per channel in the file than
    in Keras is `lost`. Only layers that were compressed are summed: some sparsity, or fewer values
    per channel than half its weights.
    """
    sparse_total = sparse_zeros = 0
    max_unique, lost = 0, []
    for layer, kernel in layers_with_kernels(model):
        found = compression(kernel)
        stored = stored_kernels.get(layer.name)
        if stored is None:
            if found.pruned or found.clustered:
                lost.append(f"{layer.name}: compressed, but not found in the .tflite to check")
            continue
        if found.pruned:
            sparse_total += kernel.size
            sparse_zeros += stored["sparsity"] * kernel.size
        if found.clustered:
            max_unique = max(max_unique, stored["max_unique_per_channel"])
        if stored["sparsity"] < found.zeros - 1e-6 or stored["max_unique_per_channel"] > found.values_per_channel:
            lost.append(
                f"{layer.name}: zeros {found.zeros:.3f} -> {stored['sparsity']:.3f}, values per channel "
                f"{found.values_per_channel} -> {stored['max_unique_per_channel']}"
            )
    return {
        "sparsity_of_pruned_layers": sparse_zeros / sparse_total if sparse_total else None,
        "max_unique_per_channel_of_clustered_layers": max_unique or None,
        "lost": lost,
    }
