"""Confusion matrix and scores against hand-computed values."""

import numpy as np
import pytest

from edgeseg.metrics import confusion_matrix, segmentation_scores

# 2x3 labels with one ignored pixel (255); the prediction under it (0) must not count.
LABELS = np.array([[0, 0, 1], [1, 2, 255]], np.uint8)
PREDICTIONS = np.array([[0, 1, 1], [2, 2, 0]], np.uint8)
# (true, predicted) pairs over valid pixels: (0,0) (0,1) (1,1) (1,2) (2,2)
EXPECTED_MATRIX = np.array([[1, 1, 0], [0, 1, 1], [0, 0, 1]])


def test_confusion_matrix_counts():
    matrix = confusion_matrix(LABELS, PREDICTIONS, num_classes=3, ignore_index=255)
    assert matrix.shape == (3, 3)
    np.testing.assert_array_equal(matrix, EXPECTED_MATRIX)
    assert matrix.sum() == 5  # 6 pixels, 1 ignored


def test_scores():
    scores = segmentation_scores(EXPECTED_MATRIX)
    # IoU = TP / (label count + predicted count - TP): 1/(2+1-1), 1/(2+2-1), 1/(1+2-1)
    assert scores["per_class_iou"] == pytest.approx([1 / 2, 1 / 3, 1 / 2])
    assert scores["miou"] == pytest.approx((1 / 2 + 1 / 3 + 1 / 2) / 3)
    assert scores["pixel_accuracy"] == pytest.approx(3 / 5)
    # class accuracy = TP / label count: 1/2, 1/2, 1/1
    assert scores["mean_class_accuracy"] == pytest.approx((1 / 2 + 1 / 2 + 1) / 3)


def test_absent_class_is_none_and_left_out_of_the_means():
    matrix = confusion_matrix(LABELS, PREDICTIONS, num_classes=4, ignore_index=255)
    assert matrix.shape == (4, 4)
    assert matrix[3].sum() == 0 and matrix[:, 3].sum() == 0
    scores = segmentation_scores(matrix)
    assert scores["per_class_iou"][3] is None
    assert scores["per_class_iou"][:3] == pytest.approx([1 / 2, 1 / 3, 1 / 2])
    assert scores["miou"] == pytest.approx((1 / 2 + 1 / 3 + 1 / 2) / 3)
    assert scores["mean_class_accuracy"] == pytest.approx(2 / 3)
    assert scores["pixel_accuracy"] == pytest.approx(3 / 5)


def test_predicted_but_absent_class_has_iou_zero():
    labels = np.array([[0, 0], [1, 1]], np.uint8)
    predictions = np.array([[0, 2], [1, 1]], np.uint8)
    matrix = confusion_matrix(labels, predictions, num_classes=3, ignore_index=255)
    np.testing.assert_array_equal(matrix, [[1, 0, 1], [0, 2, 0], [0, 0, 0]])
    scores = segmentation_scores(matrix)
    assert scores["per_class_iou"] == pytest.approx([1 / 2, 1.0, 0.0])
    assert scores["per_class_iou"][2] == 0.0 and scores["per_class_iou"][2] is not None
    assert scores["miou"] == pytest.approx(1 / 2)  # (0.5 + 1 + 0) / 3
    assert scores["mean_class_accuracy"] == pytest.approx(3 / 4)  # class 2 has no labels: left out
    assert scores["pixel_accuracy"] == pytest.approx(3 / 4)


def test_ignore_index_inside_the_class_range_is_excluded():
    labels = np.array([[0, 1, 2]], np.uint8)
    predictions = np.array([[0, 0, 0]], np.uint8)
    matrix = confusion_matrix(labels, predictions, num_classes=3, ignore_index=2)
    np.testing.assert_array_equal(matrix, [[1, 0, 0], [1, 0, 0], [0, 0, 0]])


def test_batched_inputs_count_every_image():
    labels = np.stack([LABELS, LABELS])
    predictions = np.stack([PREDICTIONS, PREDICTIONS])
    matrix = confusion_matrix(labels, predictions, num_classes=3, ignore_index=255)
    np.testing.assert_array_equal(matrix, 2 * EXPECTED_MATRIX)


def test_perfect_prediction():
    scores = segmentation_scores(confusion_matrix(LABELS, np.where(LABELS == 255, 0, LABELS), 3, 255))
    assert scores["miou"] == 1.0 and scores["pixel_accuracy"] == 1.0 and scores["mean_class_accuracy"] == 1.0


def test_all_pixels_ignored():
    matrix = confusion_matrix(np.full((2, 2), 255, np.uint8), np.zeros((2, 2), np.uint8), 3, 255)
    assert matrix.sum() == 0
    scores = segmentation_scores(matrix)
    assert scores == {"miou": None, "per_class_iou": [None, None, None], "pixel_accuracy": None, "mean_class_accuracy": None}


def test_shape_mismatch():
    with pytest.raises(ValueError, match="differ in shape"):
        confusion_matrix(LABELS, PREDICTIONS[:, :2], num_classes=3, ignore_index=255)


def test_scores_are_plain_floats():
    scores = segmentation_scores(EXPECTED_MATRIX)
    assert type(scores["miou"]) is float and type(scores["pixel_accuracy"]) is float
    assert all(type(value) is float for value in scores["per_class_iou"])
