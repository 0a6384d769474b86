"""Which kernels pruning and clustering touch, and how sparse and how clustered they are.

Defaults skip what hurts accuracy most for what little it saves: the first convolution (few
weights, sees raw pixels), depthwise kernels (9 weights per channel) and the logit layers.
"""

import numpy as np

from edgeseg._keras import keras


def is_compressible(layer, first_conv_name: str, num_classes: int) -> bool:
    """A pointwise or full Conv2D that is neither the stem nor a logit layer."""
    return (
        type(layer) is keras.layers.Conv2D
        and layer.name != first_conv_name
        and layer.filters != num_classes
    )


def first_conv_name(model) -> str | None:
    return next((layer.name for layer in model.layers if isinstance(layer, keras.layers.Conv2D)), None)


def compressible_kernels(model, num_classes: int) -> dict[str, np.ndarray]:
    """Kernel arrays of the layers `is_compressible` selects, by layer name."""
    stem = first_conv_name(model)
    return {
        layer.name: layer.kernel.numpy()
        for layer in model.layers
        if is_compressible(layer, stem, num_classes)
    }


def sparsity(kernels: dict[str, np.ndarray]) -> float:
    """Fraction of exact zeros across all given kernels."""
    total = sum(k.size for k in kernels.values())
    return float(sum(np.count_nonzero(k == 0) for k in kernels.values()) / total) if total else 0.0


def unique_values(kernels: dict[str, np.ndarray]) -> dict[str, int]:
    return {name: int(np.unique(kernel).size) for name, kernel in kernels.items()}
