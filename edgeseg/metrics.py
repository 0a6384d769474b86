"""Segmentation metrics from a confusion matrix: one implementation for every evaluator.

Example:
    >>> import numpy as np
    >>> labels = np.array([[0, 0, 1, 255]])
    >>> matrix = confusion_matrix(labels, np.array([[0, 1, 1, 0]]), num_classes=2, ignore_index=255)
    >>> round(segmentation_scores(matrix)["miou"], 4)
    0.5
"""

import cv2
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


def boundary_counts(labels: np.ndarray, predictions: np.ndarray, ignore_index: int, tolerance: int = 2) -> np.ndarray:
    """Counts for boundary F1 on one [H, W] map: [matched predicted, predicted, matched true, true].

    A boundary pixel is one whose right or lower neighbour has another class. A predicted boundary
    pixel matches if a true boundary lies within `tolerance` pixels, and the reverse; pixels on or
    next to ignored regions are left out. Sum the counts over images, then `boundary_f1(counts)`.
    """
    valid = labels != ignore_index
    valid_next = valid.copy()
    valid_next[:-1] &= valid[1:]
    valid_next[:, :-1] &= valid[:, 1:]
    true_edges = _edges(labels) & valid_next
    predicted_edges = _edges(predictions) & valid_next
    near_true = _distance_to(true_edges) <= tolerance
    near_predicted = _distance_to(predicted_edges) <= tolerance
    return np.array(
        [
            np.count_nonzero(predicted_edges & near_true),
            np.count_nonzero(predicted_edges),
            np.count_nonzero(true_edges & near_predicted),
            np.count_nonzero(true_edges),
        ],
        np.int64,
    )


def boundary_f1(counts: np.ndarray) -> float | None:
    """F1 of boundary precision and recall from summed `boundary_counts`; None without boundaries."""
    matched_predicted, predicted, matched_true, true = counts
    if predicted == 0 or true == 0:
        return None
    precision, recall = matched_predicted / predicted, matched_true / true
    return float(2 * precision * recall / (precision + recall)) if precision + recall else 0.0


def _edges(class_map: np.ndarray) -> np.ndarray:
    edges = np.zeros(class_map.shape, bool)
    edges[:-1] |= class_map[:-1] != class_map[1:]
    edges[:, :-1] |= class_map[:, :-1] != class_map[:, 1:]
    return edges


def _distance_to(edges: np.ndarray) -> np.ndarray:
    if not edges.any():
        return np.full(edges.shape, np.inf, np.float32)
    return cv2.distanceTransform((~edges).astype(np.uint8), cv2.DIST_L2, 3)
