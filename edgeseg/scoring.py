"""One evaluator for Keras models and `.tflite` files: same images, same metric code.

Example:
    >>> scores = score_split(KerasSegmenter(model), val, num_classes=4)
    >>> scores["miou"]
    0.74
"""

import numpy as np

from edgeseg._keras import tf
from edgeseg.data.split import SegmentationSplit
from edgeseg.metrics import confusion_matrix, segmentation_scores
from edgeseg.progress import progress


class KerasSegmenter:
    """Runs a Keras segmentation model in inference mode and returns class ids."""

    def __init__(self, model, batch_size: int = 16):
        self.model = model
        self.batch_size = batch_size
        self._labels = tf.function(lambda images: tf.argmax(model(images, training=False), axis=-1, output_type=tf.int32))

    def predict_labels(self, images: np.ndarray) -> np.ndarray:
        """Class ids [N, H, W] for RGB uint8 images [N, H, W, 3]."""
        batches = [
            self._labels(tf.constant(images[start : start + self.batch_size], tf.float32)).numpy()
            for start in range(0, len(images), self.batch_size)
        ]
        return np.concatenate(batches).astype(np.uint8)


def score_split(segmenter, split: SegmentationSplit, num_classes: int, desc: str = "scoring") -> dict:
    """mIoU, per-class IoU, accuracies and the confusion matrix of `segmenter` on `split`."""
    matrix = np.zeros((num_classes, num_classes), np.int64)
    chunk = 16
    for start in progress(range(0, len(split), chunk), desc=desc, unit="batch"):
        predicted = segmenter.predict_labels(split.images[start : start + chunk])
        matrix += confusion_matrix(split.labels[start : start + chunk], predicted, num_classes, split.ignore_index)
    return {**segmentation_scores(matrix), "confusion_matrix": matrix.tolist(), "images": len(split)}
