"""Boundary F1, label-resolution scoring, gates and metadata: the parts of `verify` and `export` checked by hand."""

import numpy as np
import pytest

from edgeseg.data.split import SegmentationSplit
from edgeseg.metrics import boundary_counts, boundary_f1
from edgeseg.recipe import VerifyConfig
from edgeseg.scoring import score_split, upsampled_labels
from edgeseg.stages.verify import gate_failures


class FixedLogits:
    """A segmenter whose logits are given: one-hot of a fixed class map, at model resolution."""

    outputs_labels = False

    def __init__(self, class_maps: np.ndarray, num_classes: int):
        self.logits = np.eye(num_classes, dtype=np.float32)[class_maps]

    def predict_logits(self, images):
        return self.logits[: len(images)]


def test_boundary_f1_of_a_perfect_and_a_shifted_prediction():
    labels = np.zeros((8, 8), np.uint8)
    labels[:, 4:] = 1  # one vertical boundary: column 3 (its right neighbour differs)
    assert boundary_f1(boundary_counts(labels, labels, 255)) == 1.0
    shifted = np.zeros((8, 8), np.uint8)
    shifted[:, 7:] = 1  # boundary at column 6: 3 px away
    assert boundary_f1(boundary_counts(labels, shifted, 255, tolerance=2)) == 0.0
    assert boundary_f1(boundary_counts(labels, shifted, 255, tolerance=3)) == 1.0


def test_boundary_f1_counts_by_hand_and_ignores_ignored_regions():
    labels = np.zeros((4, 6), np.uint8)
    labels[:, 3:] = 1
    labels[0] = 255  # top row ignored: its boundary pixel and the one above the ignore edge drop out
    predicted = np.zeros((4, 6), np.uint8)
    predicted[:, 3:] = 1
    predicted[3, :] = 1  # an extra horizontal boundary on row 2 (below it row 3 differs)
    counts = boundary_counts(labels, predicted, 255, tolerance=0)
    # true edges (1,2), (2,2), (3,2); predicted edges (1,2), (2,0), (2,1), (2,2): 2 of 4 on a true
    # edge (precision 1/2), and 2 of the 3 true edges predicted (recall 2/3)
    np.testing.assert_array_equal(counts, [2, 4, 2, 3])
    assert boundary_f1(counts) == pytest.approx(2 * (1 / 2) * (2 / 3) / (1 / 2 + 2 / 3))
    assert boundary_f1(np.array([0, 0, 0, 5])) is None


def test_label_resolution_scoring_upsamples_logits_to_each_label():
    model_maps = np.array([[[0, 1], [1, 1]]], np.uint8)  # 2x2 model output
    native = np.array([[0, 0, 1, 1], [0, 0, 1, 1], [1, 1, 1, 1], [1, 1, 1, 255]], np.uint8)  # 4x4 truth
    split = SegmentationSplit("val", np.zeros((1, 2, 2, 3), np.uint8), model_maps.copy(), 255, (native,))
    scores = score_split(FixedLogits(model_maps, 2), split, 2)
    assert scores["resolution"] == "label"
    upsampled = upsampled_labels(np.eye(2, dtype=np.float32)[model_maps[0]], (4, 4))
    expected = np.zeros((2, 2), np.int64)
    for truth, guess in zip(native.ravel(), upsampled.ravel()):
        if truth != 255:
            expected[truth, guess] += 1
    assert scores["confusion_matrix"] == expected.tolist()
    assert scores["model_resolution"]["miou"] == 1.0
    assert sum(map(sum, scores["confusion_matrix"])) == 15  # 16 pixels, one ignored


def verify_record(float_iou, int8_iou, latency_ms=5.0, size_bytes=100 * 1024):
    drops = [None if f is None or q is None else f - q for f, q in zip(float_iou, int8_iou)]
    return {
        "float": {"miou": float(np.mean([v for v in float_iou if v is not None]))},
        "mode": "int8",
        "quantized": {"miou": float(np.mean([v for v in int8_iou if v is not None]))},
        "miou_drop": float(np.mean([v for v in float_iou if v is not None]) - np.mean([v for v in int8_iou if v is not None])),
        "class_iou_drop": drops,
        "latency": {"2": {"median_ms": latency_ms}},
        "bytes": size_bytes,
    }


def test_every_gate_passes_when_within_its_limit():
    cfg = VerifyConfig(min_miou=0.5, max_miou_drop=0.05, max_class_iou_drop=0.1, max_latency_ms=10, max_size_kb=200)
    assert gate_failures(cfg, verify_record([0.8, 0.6], [0.78, 0.58]), ["a", "b"]) == []


@pytest.mark.parametrize(
    "option, value, record_changes, expected",
    [
        ("min_miou", 0.9, {}, "verify.min_miou: int8 mIoU 0.6800 is below 0.9"),
        ("max_miou_drop", 0.01, {}, "verify.max_miou_drop: int8 mIoU 0.6800"),
        ("max_class_iou_drop", 0.05, {}, "verify.max_class_iou_drop: class 'b' lost 0.1000 IoU"),
        ("max_latency_ms", 1.0, {"latency_ms": 3.5}, "verify.max_latency_ms: median 3.50 ms at 2 threads exceeds 1.0"),
        ("max_size_kb", 50, {"size_bytes": 80 * 1024}, "verify.max_size_kb: the .tflite is 80.0 KiB, more than 50.0"),
    ],
)
def test_each_gate_fails_with_a_line_naming_it(option, value, record_changes, expected):
    record = verify_record([0.8, 0.6], [0.86, 0.5], **record_changes)
    failures = gate_failures(VerifyConfig(**{option: value}), record, ["a", "b"])
    assert len(failures) == 1 and failures[0].startswith(expected), failures
