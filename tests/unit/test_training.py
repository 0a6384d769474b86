"""The shared training loop's options: class weights, OHEM, schedules, early stopping, TensorBoard logs."""

import math

import numpy as np
import pytest

from edgeseg.losses import masked_cross_entropy, median_frequency_weights
from edgeseg.recipe import TrainConfig
from edgeseg.training import fit_segmentation, learning_rate_schedule

# Two classes, four pixels; the last pixel is ignored (255).
LABELS = np.array([[[0, 1, 1, 255]]])
LOGITS = np.array([[[[2.0, 0.0], [0.0, 1.0], [3.0, 0.0], [0.0, 9.0]]]], np.float32)


def pixel_losses():
    """Softmax cross-entropy of each of the first three pixels, by hand."""
    return [math.log(1 + math.exp(-2.0)), math.log(1 + math.exp(-1.0)), math.log(1 + math.exp(3.0))]


def test_cross_entropy_skips_ignored_pixels():
    assert float(masked_cross_entropy(LABELS, LOGITS, 255)) == pytest.approx(np.mean(pixel_losses()), rel=1e-5)


def test_class_weights_weight_each_pixel_by_its_label():
    losses = pixel_losses()
    expected = (0.5 * losses[0] + 2.0 * losses[1] + 2.0 * losses[2]) / (0.5 + 2.0 + 2.0)
    assert float(masked_cross_entropy(LABELS, LOGITS, 255, class_weights=[0.5, 2.0])) == pytest.approx(expected, rel=1e-5)


def test_ohem_keeps_only_the_hardest_pixels():
    losses = pixel_losses()
    hardest_two = sorted(losses)[-2:]
    assert float(masked_cross_entropy(LABELS, LOGITS, 255, hardest_fraction=0.5)) == pytest.approx(np.mean(hardest_two), rel=1e-5)
    assert float(masked_cross_entropy(LABELS, LOGITS, 255, hardest_fraction=0.1)) == pytest.approx(max(losses), rel=1e-5)


def test_median_frequency_weights_favor_rare_classes():
    labels = np.array([[[0, 0, 0, 1]], [[0, 0, 255, 255]]])
    # class 0: 5 of 6 labeled pixels in the images holding it; class 1: 1 of 4; median 13/24.
    weights = median_frequency_weights(labels, 3, 255)
    assert weights == pytest.approx([(13 / 24) / (5 / 6), (13 / 24) / (1 / 4), 1.0])


@pytest.mark.parametrize("schedule, expected", [
    ("poly", [0.0, 0.001, 0.002, 0.002 * 0.5**0.9, 0.0]),
    ("constant", [0.0, 0.001, 0.002, 0.002, 0.002]),
    ("cosine", [0.0, 0.001, 0.002, 0.001, 0.0]),
])
def test_learning_rate_schedules_warm_up_then_decay(schedule, expected):
    rates = learning_rate_schedule(TrainConfig(epochs=9, lr=0.002, warmup_epochs=1, schedule=schedule), 50)
    # steps: start, half-way through warm-up, end of warm-up, half-way through decay, end.
    assert [float(rates(step)) for step in (0, 25, 50, 250, 450)] == pytest.approx(expected, abs=1e-6)


def test_early_stopping_ends_training_and_tensorboard_logs_it(tiny_model, tiny_context):
    config = TrainConfig(epochs=6, lr=1e-12, schedule="constant", early_stopping=1, class_weights="median_frequency")
    fit = fit_segmentation(tiny_model, tiny_model, config, tiny_context)
    assert [epoch["epoch"] for epoch in fit["epochs"]] == [1, 2], "no better mIoU after epoch 1: stops after 2"
    assert len(fit["class_weights"]) == tiny_context.num_classes
    assert list((tiny_context.stage_dir / "logs" / "train").glob("events.out.tfevents.*"))
