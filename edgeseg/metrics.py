"""Segmentation metrics from a confusion matrix: one implementation for every evaluator.

Example:
    >>> matrix = confusion_matrix(labels, predictions, num_classes=4, ignore_index=255)
    >>> scores = segmentation_scores(matrix)
    >>> scores["miou"]
    0.71
"""

import numpy as np


def confusion_matrix(labels: np.ndarray, predictions: np.ndarray, num_classes: int, ignore_index: int) -> np.ndarray:
    """Counts [true class, predicted class] over pixels whose label is not `ignore_index`."""
    if labels.shape != predictions.shape:
        raise ValueError(f"labels and predictions differ in shape. Received: {labels.shape} vs {predictions.shape}")
    valid = labels != ignore_index
    truth = labels[valid].astype(np.int64)
    predicted = predictions[valid].astype(np.int64)
    for name, values in (("labels", truth), ("predictions", predicted)):
        if values.size and (values.min() < 0 or values.max() >= num_classes):
            raise ValueError(
                f"{name} hold class ids outside 0..{num_classes - 1} (ignore_index {ignore_index}). "
                f"Received: {sorted(set(np.unique(values).tolist()) - set(range(num_classes)))[:8]}"
            )
    flat = np.bincount(truth * num_classes + predicted, minlength=num_classes * num_classes)
    return flat.reshape(num_classes, num_classes)


def segmentation_scores(matrix: np.ndarray) -> dict:
    """mIoU, per-class IoU, pixel accuracy and mean class accuracy.

    A class absent from the labels and never predicted has IoU NaN (reported as None) and is left
    out of the mean, as in the usual benchmark protocols.
    """
    matrix = matrix.astype(np.float64)
    true_positive = np.diag(matrix)
    label_count = matrix.sum(axis=1)
    predicted_count = matrix.sum(axis=0)
    union = label_count + predicted_count - true_positive
    with np.errstate(divide="ignore", invalid="ignore"):
        iou = np.where(union > 0, true_positive / union, np.nan)
        class_accuracy = np.where(label_count > 0, true_positive / label_count, np.nan)
    total = matrix.sum()
    return {
        "miou": _mean(iou),
        "per_class_iou": [None if np.isnan(v) else float(v) for v in iou],
        "pixel_accuracy": float(true_positive.sum() / total) if total else None,
        "mean_class_accuracy": _mean(class_accuracy),
    }


def _mean(values: np.ndarray) -> float | None:
    present = values[~np.isnan(values)]
    return float(present.mean()) if present.size else None
