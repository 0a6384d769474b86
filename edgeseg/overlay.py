"""Class colors and mask overlays: the post-processing contract every demo and report shares.

Example::

    colors = class_colors(4)
    blended = overlay(image, labels, colors, alpha=0.5)
"""

import numpy as np


def class_colors(num_classes: int, palette=None) -> list[list[int]]:
    """The data's palette, or the PASCAL VOC color map: distinct, stable RGB colors for any class count."""
    if palette is not None:
        return [list(color) for color in palette]
    colors = []
    for class_id in range(num_classes):
        r = g = b = 0
        value = class_id
        for shift in range(7, -1, -1):
            r |= (value & 1) << shift
            g |= ((value >> 1) & 1) << shift
            b |= ((value >> 2) & 1) << shift
            value >>= 3
        colors.append([r, g, b])
    return colors


def colorize(labels: np.ndarray, colors, ignore_index: int | None = None) -> np.ndarray:
    """RGB uint8 [H, W, 3] with each class id painted its color; ignored and unknown ids black."""
    lookup = np.zeros((256, 3), np.uint8)
    lookup[: len(colors)] = np.asarray(colors, np.uint8)
    if ignore_index is not None:
        lookup[ignore_index] = 0
    return lookup[labels.astype(np.uint8)]


def overlay(image: np.ndarray, labels: np.ndarray, colors, alpha: float = 0.5, ignore_index: int | None = None) -> np.ndarray:
    """The RGB image with the colored mask blended in at `alpha`."""
    painted = colorize(labels, colors, ignore_index).astype(np.float32)
    return np.clip(image.astype(np.float32) * (1 - alpha) + painted * alpha, 0, 255).astype(np.uint8)
