"""One evaluator for Keras models and `.tflite` files (any `edgeseg.segmenter.Segmenter`): same
images, same metric code.

Example::

    scores = score_split(KerasSegmenter(model), val, num_classes=4)
    scores["miou"], scores["boundary_f1"]
"""

import cv2
import numpy as np

from edgeseg.data.split import SegmentationSplit
from edgeseg.metrics import boundary_counts, boundary_f1, confusion_matrix, segmentation_scores
from edgeseg.progress import progress
from edgeseg.segmenter import CHUNK, Segmenter


def score_split(segmenter: Segmenter, split: SegmentationSplit, num_classes: int, desc: str = "scoring") -> dict:
    """mIoU, per-class IoU, accuracies, boundary F1 and the confusion matrix of `segmenter` on `split`.

    When the split keeps labels at their own resolution, logits are resized up to each label
    (bilinear, then argmax; a model that outputs class ids has them resized nearest) and those
    figures lead; the model-resolution figures are kept beside them under "model_resolution".
    A model whose output is smaller than its input (1/4 resolution, say) is resized up the same
    way to the input resolution.
    """
    at_model = np.zeros((num_classes, num_classes), np.int64)
    at_label = np.zeros_like(at_model)
    edges = np.zeros(4, np.int64)
    for start in progress(range(0, len(split), CHUNK), desc=desc, unit="batch"):
        images = split.images[start : start + CHUNK]
        outputs = segmenter.predict_labels(images) if segmenter.outputs_labels else segmenter.predict_logits(images)
        labels = split.labels[start : start + CHUNK]
        if outputs.shape[1:3] == labels.shape[1:3]:
            predicted = outputs if segmenter.outputs_labels else outputs.argmax(axis=-1)
        else:
            predicted = np.stack([upsampled_labels(output, labels.shape[1:3]) for output in outputs])
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
        return {
            **model_scores,
            "resolution": "model",
            "boundary_f1": boundary_f1(edges),
            "confusion_matrix": at_model.tolist(),
            "images": len(split),
        }
    return {
        **segmentation_scores(at_label),
        "resolution": "label",
        "boundary_f1": boundary_f1(edges),
        "confusion_matrix": at_label.tolist(),
        "images": len(split),
        "model_resolution": model_scores,
    }


def upsampled_labels(output: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Class ids at `shape` from logits [h, w, C] (bilinear resize, then argmax) or from class ids
    [h, w] (nearest resize).

    The argmax runs one class at a time, so memory is two float maps at `shape` whatever the
    class count (stacking every resized class first took C of them: 1.5 GiB for one 4000x4000
    label with 11 classes); ties go to the lower class id, as numpy's argmax gives them.
    """
    size = (int(shape[1]), int(shape[0]))
    if output.ndim == 2:
        return cv2.resize(output, size, interpolation=cv2.INTER_NEAREST)
    best_score = cv2.resize(np.ascontiguousarray(output[..., 0]), size, interpolation=cv2.INTER_LINEAR)
    best_class = np.zeros(best_score.shape, np.uint8)
    for class_id in range(1, output.shape[-1]):
        score = cv2.resize(np.ascontiguousarray(output[..., class_id]), size, interpolation=cv2.INTER_LINEAR)
        better = score > best_score
        best_class[better] = class_id
        np.maximum(best_score, score, out=best_score)
        del score, better  # freed before the next class's map is made
    return best_class


def agreement(reference: Segmenter, candidate: Segmenter, images: np.ndarray) -> dict:
    """How closely `candidate` follows `reference`: argmax agreement and logit error, per pixel
    (agreement only, when `candidate` outputs class ids)."""
    if candidate.outputs_labels:
        agreeing = sum(
            int(
                np.count_nonzero(
                    reference.predict_labels(images[start : start + CHUNK])
                    == candidate.predict_labels(images[start : start + CHUNK])
                )
            )
            for start in range(0, len(images), CHUNK)
        )
        return {"pixel_agreement": agreeing / images[..., 0].size, "max_logit_error": None, "mean_logit_error": None}
    agreeing, pixels, max_error, error_sum = 0, 0, 0.0, 0.0
    for start in range(0, len(images), CHUNK):
        expected = reference.predict_logits(images[start : start + CHUNK])
        received = candidate.predict_logits(images[start : start + CHUNK])
        agreeing += int(np.count_nonzero(expected.argmax(-1) == received.argmax(-1)))
        pixels += expected.shape[0] * expected.shape[1] * expected.shape[2]
        difference = np.abs(expected - received)
        max_error, error_sum = max(max_error, float(difference.max())), error_sum + float(difference.sum())
    return {
        "pixel_agreement": agreeing / pixels,
        "max_logit_error": max_error,
        "mean_logit_error": error_sum / (pixels * expected.shape[-1]),
    }
