"""`distill` beyond the logit loss: the KL term and the Lovasz label term by hand, unlabeled images, cached teacher logits,
feature distillation through an adapter."""

import dataclasses

import numpy as np
import pytest

from edgeseg import distillation
from edgeseg.data.folder import load_unlabeled_images
from edgeseg.errors import DataError, StageError
from edgeseg.losses import distillation_loss
from edgeseg.recipe import DistillConfig
from edgeseg.stages import distill
from edgeseg.stages.base import PipelineState
from tests.helpers import REMOVE, assert_one_problem, load_error, run_stage_test, write_image, write_recipe

# Two images of 1x2 pixels, 2 classes. Image 0 has one labeled pixel and one ignored; image 1 none.
TEACHER = np.array([[[[2.0, 0.0], [0.0, 1.0]]], [[[1.0, 3.0], [0.5, 0.0]]]], np.float32)
STUDENT = np.array([[[[0.0, 1.0], [1.0, 1.0]]], [[[0.0, 0.0], [2.0, 1.0]]]], np.float32)
LABELS = np.array([[[0, 255]], [[255, 255]]])


def kl(teacher_logits, student_logits, temperature):
    def softmax(values):
        exps = np.exp(np.asarray(values) / temperature)
        return exps / exps.sum()

    p, q = softmax(teacher_logits), softmax(student_logits)
    return float(np.sum(p * np.log(p / q)))


def test_kl_term_counts_labeled_pixels_with_temperature_squared():
    # kd_weight 1: T^2 times the KL of the one labeled pixel; the ignored pixels teach nothing.
    expected = 4.0 * kl(TEACHER[0, 0, 0], STUDENT[0, 0, 0], 2.0)
    assert float(distillation_loss(LABELS, STUDENT, TEACHER, 255, 2.0, kd_weight=1.0)) == pytest.approx(expected, rel=1e-5)
    # kd_weight 0: cross-entropy of the labeled pixel alone.
    cross_entropy = -np.log(np.exp(0.0) / (np.exp(0.0) + np.exp(1.0)))
    assert float(distillation_loss(LABELS, STUDENT, TEACHER, 255, 2.0, kd_weight=0.0)) == pytest.approx(cross_entropy, rel=1e-5)


def test_the_label_term_adds_lovasz_softmax_with_its_weight():
    # kd_weight 0.5: half of (CE + 2 x Lovasz) on the labels. For one labeled pixel, Lovasz-softmax
    # is 1 - the probability of its class.
    probability = np.exp(0.0) / (np.exp(0.0) + np.exp(1.0))
    cross_entropy, kd = -np.log(probability), 4.0 * kl(TEACHER[0, 0, 0], STUDENT[0, 0, 0], 2.0)
    expected = 0.5 * (cross_entropy + 2.0 * (1.0 - probability)) + 0.5 * kd
    received = distillation_loss(LABELS, STUDENT, TEACHER, 255, 2.0, kd_weight=0.5, lovasz_weight=2.0)
    assert float(received) == pytest.approx(expected, rel=1e-5)
    assert distillation.fine_tune_loss(DistillConfig(), "the unpruned model", 2.0) == (
        "cross-entropy + 2 x Lovasz-softmax + kl on the unpruned model's logits"
    )


def test_an_unlabeled_image_learns_from_the_teacher_at_every_pixel():
    unlabeled = np.array([False, True])
    taught = [(0, 0, 0), (1, 0, 0), (1, 0, 1)]  # the labeled pixel and both pixels of the unlabeled image
    expected = 4.0 * np.mean([kl(TEACHER[i, j, k], STUDENT[i, j, k], 2.0) for i, j, k in taught])
    received = distillation_loss(LABELS, STUDENT, TEACHER, 255, 2.0, kd_weight=1.0, unlabeled=unlabeled)
    assert float(received) == pytest.approx(expected, rel=1e-5)


def test_unlabeled_images_are_trained_on_and_recorded(tiny_model, tiny_context):
    unlabeled = tiny_context.val.images[:8]
    ctx = dataclasses.replace(tiny_context, unlabeled=unlabeled)
    outcome = run_stage_test("distill", PipelineState(tiny_model), ctx, epochs=1)
    assert outcome.record["unlabeled_images"] == 8 and outcome.record["teacher_logits"] == "every step"


def test_without_augmentation_the_teacher_logits_are_cached_and_the_teacher_not_run(tiny_model, tiny_context, monkeypatch):
    plain = dataclasses.replace(tiny_context, augment=None)
    assert run_stage_test("distill", PipelineState(tiny_model), plain, epochs=1).record["teacher_logits"] == "cached"
    images = tiny_context.train.images[:20]
    distiller = distillation.Distiller(tiny_model, tiny_model, DistillConfig(), tiny_context.ignore_index)
    cached = distillation.teacher_logits_once(distiller, images)
    assert cached.dtype == np.float16
    np.testing.assert_allclose(cached, distiller.teacher_logits(images.astype(np.float32)).numpy(), rtol=2e-3, atol=1e-3)

    def teacher_forbidden(self, images):
        raise AssertionError("the teacher ran during training although its logits were cached")

    monkeypatch.setattr(distillation.Distiller, "_teacher_outputs", teacher_forbidden)
    monkeypatch.setattr(
        distill, "teacher_logits_once", lambda distiller, images: np.zeros((len(images), *cached.shape[1:]), np.float16)
    )
    run_stage_test("distill", PipelineState(tiny_model), plain, epochs=1)


@pytest.mark.parametrize("stride", [4, 8, 16])
def test_the_feature_layer_is_the_deepest_backbone_layer_at_the_stride(tiny_model, stride):
    name = distillation.backbone_layer_at_stride(tiny_model, stride)
    assert name.startswith(("stem_", "block")) and tiny_model.get_layer(name).output_shape[1] * stride == 32
    deeper = tiny_model.layers[[layer.name for layer in tiny_model.layers].index(name) + 1 :]
    assert not [layer.name for layer in deeper if layer.name.startswith("block") and layer.output_shape[1] * stride == 32]


def test_feature_distillation_trains_through_an_adapter_the_student_does_not_keep(tiny_model, tiny_context):
    outcome = run_stage_test("distill", PipelineState(tiny_model), tiny_context, epochs=1, feature_weight=1.0, feature_stride=16)
    teacher_layer, student_layer = outcome.record["feature_layers"]
    assert teacher_layer == distillation.backbone_layer_at_stride(tiny_model, 16)
    assert student_layer == distillation.backbone_layer_at_stride(outcome.state.model, 16)
    assert "feature_adapter" not in {layer.name for layer in outcome.state.model.layers}
    assert outcome.record["teacher_logits"] == "every step"


def test_feature_distillation_names_a_missing_layer(tiny_model, tiny_context):
    with pytest.raises(StageError, match="the student .* has no layer 'nowhere'"):
        distill.apply(
            PipelineState(tiny_model),
            DistillConfig(epochs=1, feature_weight=1.0, feature_layers=("block1_project_bn", "nowhere")),
            tiny_context,
        )


def test_unlabeled_images_are_read_and_resized(tmp_path):
    for index in range(3):
        write_image(tmp_path / "unlabeled" / f"frame{index}.jpg", seed=index)
    images = load_unlabeled_images(tmp_path / "unlabeled", (32, 48))
    assert images.shape == (3, 32, 48, 3) and images.dtype == np.uint8
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="empty: no images"):
        load_unlabeled_images(tmp_path / "empty", (32, 32))


def test_unlabeled_images_without_distill_are_a_recipe_error(tmp_path):
    (tmp_path / "frames").mkdir()
    path = write_recipe(
        tmp_path, data={"format": "synthetic", "unlabeled": "frames"}, stages=[{"train": {"epochs": 1}}], student=REMOVE
    )
    assert_one_problem(load_error(path), path, "data.unlabeled", "need a 'distill' stage")


@pytest.mark.parametrize(
    "stage, options",
    [
        pytest.param("prune", {"target_sparsity": 0.5, "sparsity_schedule": "constant"}, marks=pytest.mark.ci),  # 54 s in CI
        pytest.param("cluster", {"clusters": 4}, marks=pytest.mark.slow),  # the same helper as prune's
    ],
)
def test_prune_and_cluster_fine_tune_against_the_teacher_when_asked(tiny_model, tiny_context, monkeypatch, stage, options):
    from edgeseg.models.copying import copy_model

    teachers_seen = []
    teacher_outputs = distillation.Distiller._teacher_outputs

    def spied(self, images):
        teachers_seen.append(self.teacher)
        return teacher_outputs(self, images)

    monkeypatch.setattr(distillation.Distiller, "_teacher_outputs", spied)
    student = copy_model(tiny_model)
    # The stage's own check (target sparsity reached; at most `clusters` values) holds through the distiller.
    outcome = run_stage_test(
        stage,
        PipelineState(student, teacher=tiny_model),
        tiny_context,
        epochs=1,
        distill={"kd_loss": "cwd", "temperature": 4.0},
        **options,
    )
    assert teachers_seen and all(seen is tiny_model for seen in teachers_seen)
    assert outcome.record["fine_tune_loss"] == "cross-entropy + cwd on the teacher's logits"
    assert outcome.state.teacher is tiny_model
    with pytest.raises(StageError, match=f"{stage}.distill: .* none ran before '{stage}'. Received: teacher=None"):
        run_stage_test(stage, PipelineState(student), tiny_context, epochs=1, distill={}, **options)


def test_a_teacher_guided_prune_without_a_distill_stage_before_it_is_a_recipe_error(tmp_path):
    path = write_recipe(tmp_path, stages=[{"train": {"epochs": 1}}, {"prune": {"distill": {}}}], student=REMOVE)
    assert_one_problem(load_error(path), path, "stages[1].prune.distill", "a 'distill' stage")
