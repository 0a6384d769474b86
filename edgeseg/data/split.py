"""A split of a dataset held in memory at the model's input size."""

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class SegmentationSplit:
    """Images [N, H, W, 3] RGB uint8 and labels [N, H, W] uint8 class ids (or ignore_index).

    `native_labels`, when the files were larger than the model input, holds each label at its
    own resolution, so predictions can be scored the way benchmarks do (resized up to the label).

    Example::

        split = SegmentationSplit("val", images, labels, ignore_index=255)
        len(split)
    """

    name: str
    images: np.ndarray
    labels: np.ndarray
    ignore_index: int
    native_labels: tuple | None = None

    def __post_init__(self):
        if self.images.dtype != np.uint8 or self.images.ndim != 4 or self.images.shape[-1] != 3:
            raise ValueError(f"images must be uint8 [N, H, W, 3]. Received: {self.images.dtype} {self.images.shape}")
        if self.labels.shape != self.images.shape[:3]:
            raise ValueError(
                f"labels must be [N, H, W] matching images. Received: labels={self.labels.shape}, images={self.images.shape}"
            )

    def __len__(self) -> int:
        return len(self.images)
