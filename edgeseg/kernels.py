"""What compression leaves in a weight array, counted the same way in Keras and in a `.tflite`.

Example:
    >>> max_values_per_channel(np.array([[1.0, 2.0], [1.0, 3.0]]))   # channels on the last axis
    2
"""

import numpy as np


def max_values_per_channel(weights: np.ndarray, channel_axis: int = -1) -> int:
    """The most distinct values any one output channel (a slice along `channel_axis`) holds."""
    channels = np.moveaxis(weights, channel_axis, 0).reshape(weights.shape[channel_axis], -1)
    return max(int(np.unique(channel).size) for channel in channels)


def layer_kernel(layer) -> np.ndarray | None:
    """A Keras layer's kernel with output channels on the last axis, or None if it has none.

    A depthwise kernel [h, w, in, multiplier] becomes [h, w, in * multiplier], its output channels.
    """
    if getattr(layer, "depthwise_kernel", None) is not None:
        kernel = layer.depthwise_kernel.numpy()
        return kernel.reshape(*kernel.shape[:2], -1)
    kernel = getattr(layer, "kernel", None)
    return None if kernel is None else kernel.numpy()
