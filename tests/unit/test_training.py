"""The shared training loop's options: class weights, OHEM, Lovasz-softmax, schedules, early stopping, TensorBoard logs."""

import math

import numpy as np
import pytest

from edgeseg._keras import tf
from edgeseg.losses import MaskedCrossEntropy, label_loss, lovasz_softmax, masked_cross_entropy, median_frequency_weights
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


def test_lovasz_softmax_is_the_jaccard_loss_of_hard_predictions_over_the_classes_present():
    # Labels 0 0 1 1 and an ignored pixel; confident predictions 0 1 1 1, and class 2 on the ignored pixel.
    labels = np.array([[[0, 0, 1, 1, 255]]])
    logits = 50.0 * np.eye(3, dtype=np.float32)[[[[0, 1, 1, 1, 2]]]]
    # IoU of class 0: 1/2, of class 1: 2/3; class 2 is in no label, so it is not averaged in.
    assert float(lovasz_softmax(labels, logits, 255)) == pytest.approx(((1 - 1 / 2) + (1 - 2 / 3)) / 2, abs=1e-6)
    right = 50.0 * np.eye(3, dtype=np.float32)[[[[0, 0, 1, 1, 2]]]]
    assert float(lovasz_softmax(labels, right, 255)) == pytest.approx(0, abs=1e-6)


def test_the_label_loss_adds_lovasz_softmax_on_every_second_row_and_column():
    rng = np.random.default_rng(0)
    labels, logits = rng.integers(0, 3, [2, 4, 6]), rng.normal(size=[2, 4, 6, 3]).astype(np.float32)
    lovasz = float(lovasz_softmax(labels[:, ::2, ::2], logits[:, ::2, ::2], 255))
    expected = float(masked_cross_entropy(labels, logits, 255)) + 0.5 * lovasz
    assert lovasz > 0.1
    assert float(label_loss(labels, logits, 255, lovasz_weight=0.5)) == pytest.approx(expected, rel=1e-5)
    restored = MaskedCrossEntropy.from_config(MaskedCrossEntropy(255, lovasz_weight=0.5).get_config())
    assert float(restored(labels, logits)) == pytest.approx(expected, rel=1e-5)


def test_a_batch_without_labeled_pixels_has_no_lovasz_loss_and_a_zero_gradient():
    # An unlabeled image (distill's data.unlabeled) is all ignore_index; a batch may hold only such images.
    logits = tf.Variable(np.ones([1, 2, 2, 3], np.float32))
    with tf.GradientTape() as tape:
        loss = lovasz_softmax(np.full([1, 2, 2], 255), logits, 255)
    assert float(loss) == 0.0
    assert not np.any(tape.gradient(loss, logits).numpy())


def test_median_frequency_weights_favor_rare_classes():
    labels = np.array([[[0, 0, 0, 1]], [[0, 0, 255, 255]]])
    # class 0: 5 of 6 labeled pixels in the images holding it; class 1: 1 of 4; median 13/24.
    weights = median_frequency_weights(labels, 3, 255)
    assert weights == pytest.approx([(13 / 24) / (5 / 6), (13 / 24) / (1 / 4), 1.0])


@pytest.mark.parametrize(
    "schedule, expected",
    [
        ("poly", [0.0, 0.001, 0.002, 0.002 * 0.5**0.9, 0.0]),
        ("constant", [0.0, 0.001, 0.002, 0.002, 0.002]),
        ("cosine", [0.0, 0.001, 0.002, 0.001, 0.0]),
    ],
)
def test_learning_rate_schedules_warm_up_then_decay(schedule, expected):
    rates = learning_rate_schedule(TrainConfig(epochs=9, lr=0.002, warmup_epochs=1, schedule=schedule), 50)
    # steps: start, half-way through warm-up, end of warm-up, half-way through decay, end.
    assert [float(rates(step)) for step in (0, 25, 50, 250, 450)] == pytest.approx(expected, abs=1e-6)


def test_early_stopping_ends_training_and_tensorboard_logs_it(tiny_model, tiny_context):
    config = TrainConfig(
        epochs=6, lr=1e-12, schedule="constant", early_stopping=1, class_weights="median_frequency", lovasz_weight=0.5
    )
    fit = fit_segmentation(tiny_model, tiny_model, config, tiny_context)
    assert tiny_model.loss.lovasz_weight == 0.5, "the stage's setting reaches the compiled loss"
    assert [epoch["epoch"] for epoch in fit["epochs"]] == [1, 2], "no better mIoU after epoch 1: stops after 2"
    assert len(fit["class_weights"]) == tiny_context.num_classes
    assert list((tiny_context.stage_dir / "logs" / "train").glob("events.out.tfevents.*"))


def test_a_fit_that_keeps_its_last_epoch_says_so_and_returns_its_score(tiny_model, tiny_context, caplog):
    config = TrainConfig(epochs=2, lr=1e-12, schedule="constant")
    with caplog.at_level("INFO", logger="edgeseg"):
        fit = fit_segmentation(tiny_model, tiny_model, config, tiny_context, keep_best=False)
    epochs = [record.getMessage() for record in caplog.records if record.getMessage().startswith("  epoch")]
    assert len(epochs) == 2 and all("this stage keeps its last epoch" in line for line in epochs)
    assert fit["val_miou"] == fit["epochs"][-1]["val_miou"]


def test_channel_wise_distillation_matches_a_hand_computation():
    from edgeseg.losses import channel_wise_divergence, distillation_loss

    # One image, 1x2 pixels, 2 classes; temperature 2.
    teacher = np.array([[[[1.0, 0.0], [3.0, 2.0]]]], np.float32)
    student = np.array([[[[0.0, 1.0], [0.5, 0.5]]]], np.float32)

    def softmax(values):
        exps = np.exp(np.asarray(values) - np.max(values))
        return exps / exps.sum()

    expected = 0.0
    for channel in range(2):  # a softmax over the two positions, per class channel
        p = softmax(teacher[0, 0, :, channel] / 2.0)
        q = softmax(student[0, 0, :, channel] / 2.0)
        expected += np.sum(p * np.log(p / q)) / 2
    assert float(channel_wise_divergence(student, teacher, 2.0)) == pytest.approx(expected, rel=1e-5)
    assert float(channel_wise_divergence(teacher, teacher, 2.0)) == pytest.approx(0.0, abs=1e-7)
    labels = np.array([[[0, 255]]])
    combined = distillation_loss(labels, student, teacher, 255, 2.0, kd_weight=1.0, kd_loss="cwd")
    assert float(combined) == pytest.approx(4.0 * expected, rel=1e-5), "kd_weight 1: T^2 * CWD alone"


def test_a_teacher_of_another_input_size_is_distilled_from(tiny_context):
    from edgeseg.models.zoo import build_model
    from edgeseg.recipe import DistillConfig, ModelSpec
    from edgeseg.stages import distill
    from edgeseg.stages.base import PipelineState

    teacher = build_model(ModelSpec(arch="lraspp", alpha=0.35), (64, 64), 4, seed=1)
    outcome = distill.apply(PipelineState(teacher), DistillConfig(epochs=1, kd_loss="cwd"), tiny_context)
    assert outcome.state.model.input_shape[1:3] == (32, 32) and outcome.record["kd_loss"] == "cwd"
    assert outcome.state.teacher is teacher


def test_a_teacher_of_other_classes_is_refused(tiny_context):
    from edgeseg.errors import StageError
    from edgeseg.models.zoo import build_model
    from edgeseg.recipe import DistillConfig, ModelSpec
    from edgeseg.stages import distill
    from edgeseg.stages.base import PipelineState

    teacher = build_model(ModelSpec(arch="lraspp", alpha=0.35), (32, 32), 6, seed=1)
    with pytest.raises(StageError, match="teacher predicts 6 classes and the student 4"):
        distill.apply(PipelineState(teacher), DistillConfig(epochs=1), tiny_context)


def test_a_training_step_is_traced_once(tiny_context):
    """The optimizer is built before the first step: a step that creates its slot variables is
    traced twice by tf.function, which doubled the graph-building time of every training stage."""
    from edgeseg._keras import keras

    images = keras.Input((32, 32, 3))
    model = keras.Model(images, keras.layers.Conv2D(4, 1, name="logits")(keras.layers.Conv2D(8, 3, padding="same")(images)))
    fit_segmentation(model, model, TrainConfig(epochs=1, tensorboard=False), tiny_context)
    assert model.train_function.experimental_get_tracing_count() == 1
