"""One evaluator for Keras models and `.tflite` files: same images, same metric code.

Example:
    >>> scores = score_split(KerasSegmenter(model), val, num_classes=4)
    >>> scores["miou"], scores["boundary_f1"]
    (0.74, 0.61)
"""

import cv2
import numpy as np

from edgeseg.data.split import SegmentationSplit
from edgeseg.metrics import boundary_counts, boundary_f1, confusion_matrix, segmentation_scores
from edgeseg.progress import progress

CHUNK = 16


class KerasSegmenter:
    """Runs a Keras segmentation model (logits or, see `edgeseg.models.labels`, class ids out) in
    inference mode."""

    def __init__(self, model, batch_size: int = CHUNK):
        from edgeseg._keras import tf

        self.model, self.batch_size, self._tf = model, batch_size, tf
        self._logits = tf.function(lambda images: model(images, training=False))

    @property
    def outputs_labels(self) -> bool:
        return len(self.model.output_shape) == 3

    def predict_logits(self, images: np.ndarray) -> np.ndarray:
        """Float logits [N, H, W, C] (class ids [N, H, W] for a labels model) for RGB uint8 images [N, H, W, 3]."""
        batches = [
            self._logits(self._tf.constant(images[start : start + self.batch_size], self._tf.float32)).numpy()
            for start in range(0, len(images), self.batch_size)
        ]
        return np.concatenate(batches)

    def predict_labels(self, images: np.ndarray) -> np.ndarray:
        outputs = self.predict_logits(images)
        return outputs if self.outputs_labels else outputs.argmax(axis=-1).astype(np.uint8)


def score_split(segmenter, split: SegmentationSplit, num_classes: int, desc: str = "scoring") -> dict:
    """mIoU, per-class IoU, accuracies, boundary F1 and the confusion matrix of `segmenter` on `split`.

    When the split keeps labels at their own resolution, logits are resized up to each label
    (bilinear, then argmax; a model that outputs class ids has them resized nearest) and those
    figures lead; the model-resolution figures are kept beside them under "model_resolution".
    """
    at_model = np.zeros((num_classes, num_classes), np.int64)
    at_label = np.zeros_like(at_model)
    edges = np.zeros(4, np.int64)
    for start in progress(range(0, len(split), CHUNK), desc=desc, unit="batch"):
        images = split.images[start : start + CHUNK]
        outputs = segmenter.predict_labels(images) if segmenter.outputs_labels else segmenter.predict_logits(images)
        labels = split.labels[start : start + CHUNK]
        predicted = outputs if segmenter.outputs_labels else outputs.argmax(axis=-1)
        at_model += confusion_matrix(labels, predicted, num_classes, split.ignore_index)
        for offset, output in enumerate(outputs):
            truth, guess = labels[offset], predicted[offset]
            if split.native_labels is not None:
                truth = split.native_labels[start + offset]
                guess = upsampled_labels(output, truth.shape)
                at_label += confusion_matrix(truth, guess, num_classes, split.ignore_index)
            edges += boundary_counts(truth, guess, split.ignore_index)
    model_scores = segmentation_scores(at_model)
    if split.native_labels is None:
        return {**model_scores, "resolution": "model", "boundary_f1": boundary_f1(edges),
                "confusion_matrix": at_model.tolist(), "images": len(split)}
    return {**segmentation_scores(at_label), "resolution": "label", "boundary_f1": boundary_f1(edges),
            "confusion_matrix": at_label.tolist(), "images": len(split), "model_resolution": model_scores}


def upsampled_labels(output: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Class ids at `shape` from logits [h, w, C] (bilinear resize, then argmax) or from class ids
    [h, w] (nearest resize)."""
    if output.ndim == 2:
        return cv2.resize(output, (shape[1], shape[0]), interpolation=cv2.INTER_NEAREST)
    logits = output
    channels = [cv2.resize(logits[..., c], (shape[1], shape[0]), interpolation=cv2.INTER_LINEAR) for c in range(logits.shape[-1])]
    return np.argmax(np.stack(channels, axis=-1), axis=-1)
