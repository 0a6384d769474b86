"""`distill`: train the recipe's student on labels and on the current model's softened logits.

Options beyond the logit loss: feature distillation (`feature_weight`), the student's backbone
features mapped by a trained 1x1 adapter onto the teacher's at the same stride; `data.unlabeled`
images, learned from the teacher alone; and, with augmentation off, the teacher's logits computed
once before training instead of every step (its input never changes then).
"""

import dataclasses
import logging

import numpy as np

from edgeseg._keras import keras, tf
from edgeseg.data.split import SegmentationSplit
from edgeseg.errors import StageError
from edgeseg.losses import distillation_loss
from edgeseg.models.copying import copy_model
from edgeseg.models.imagenet import BACKBONE_LAYER_PREFIXES
from edgeseg.models.zoo import model_from_spec
from edgeseg.progress import progress
from edgeseg.stages.base import PipelineState, StageOutcome, save_stage_model
from edgeseg.training import fit_segmentation

log = logging.getLogger("edgeseg")


class Distiller(keras.Model):
    """Trains `student` against a frozen `teacher` run in inference mode on the same augmented batch.

    With `feature_layers` (teacher layer, student layer), the student's features also learn the
    teacher's through a 1x1 adapter trained with it (and dropped afterwards).
    """

    def __init__(self, student, teacher, cfg, ignore_index: int, feature_layers: tuple[str, str] | None = None):
        super().__init__()
        self.student, self.teacher, self.cfg, self.ignore_index = student, teacher, cfg, ignore_index
        self.feature_layers = feature_layers
        if feature_layers is not None:
            teacher_layer, student_layer = feature_layers
            self.teacher_features = keras.Model(teacher.input, [teacher.output, teacher.get_layer(teacher_layer).output])
            self.student_features = keras.Model(student.input, [student.output, student.get_layer(student_layer).output])
            self.adapter = keras.layers.Conv2D(self.teacher_features.outputs[1].shape[-1], 1, name="feature_adapter")

    def call(self, images, training=False):
        return self.student(images, training=training)

    def teacher_logits(self, images):
        """The teacher's logits for the student's batch, at the student's output size."""
        return self._teacher_outputs(images)[0]

    def _teacher_outputs(self, images):
        """The teacher's logits at the student's output size and, with feature distillation, its features.

        A teacher made for another input size sees the batch resized to its size (bilinear, as the
        demos feed a camera frame), and its logits are resized back.
        """
        teacher_size = self.teacher.input_shape[1:3]
        if None not in teacher_size and tuple(teacher_size) != tuple(images.shape[1:3]):
            images = tf.image.resize(images, teacher_size, method="bilinear")
        if self.feature_layers is None:
            logits, features = self.teacher(images, training=False), None
        else:
            logits, features = self.teacher_features(images, training=False)
        student_size = self.student.output_shape[1:3]
        if tuple(logits.shape[1:3]) != tuple(student_size):
            logits = tf.image.resize(logits, student_size, method="bilinear")
        return logits, features

    def train_step(self, data):
        images, labels, extras = data if len(data) == 3 else (*data, {})
        if "teacher_logits" in extras:
            teacher_logits, teacher_features = tf.cast(extras["teacher_logits"], tf.float32), None
        else:
            teacher_logits, teacher_features = self._teacher_outputs(images)
        unlabeled = None if "labeled" not in extras else tf.logical_not(extras["labeled"])
        with tf.GradientTape() as tape:
            if self.feature_layers is None:
                student_logits = self.student(images, training=True)
            else:
                student_logits, student_features = self.student_features(images, training=True)
            loss = distillation_loss(
                labels, student_logits, teacher_logits, self.ignore_index, self.cfg.temperature, self.cfg.kd_weight,
                self.cfg.kd_loss, unlabeled,
            )
            if self.feature_layers is not None:
                loss += self.cfg.feature_weight * self._feature_error(student_features, teacher_features)
            # Replicas' gradients and returned values are summed, so each replica's share of the mean
            # is 1/replicas of its own.
            replica_loss = loss / tf.distribute.get_strategy().num_replicas_in_sync
        variables = self.student.trainable_variables + (self.adapter.trainable_variables if self.feature_layers else [])
        self.optimizer.apply_gradients(zip(tape.gradient(replica_loss, variables), variables))
        return {"loss": replica_loss}

    def _feature_error(self, student_features, teacher_features):
        adapted = self.adapter(student_features)
        if tuple(adapted.shape[1:3]) != tuple(teacher_features.shape[1:3]):
            adapted = tf.image.resize(adapted, teacher_features.shape[1:3], method="bilinear")
        return tf.reduce_mean(tf.square(adapted - teacher_features))


def backbone_layer_at_stride(model, stride: int) -> str:
    """The name of `model`'s last backbone layer whose output is the input size / `stride`: the
    deepest features at that stride, for feature distillation of zoo models.

    Example:
        >>> backbone_layer_at_stride(build_model(ModelSpec(arch="lraspp"), (64, 64), 4), 8)
        'block6_expand_relu'
    """
    height = model.input_shape[1]
    found = [layer.name for layer in model.layers if layer.name.startswith(BACKBONE_LAYER_PREFIXES)
             and len(layer.output_shape) == 4 and layer.output_shape[1] * stride == height]
    if not found:
        raise StageError(f"distill.feature_stride: {model.name} has no backbone layer at stride {stride}; for a model "
                         f"not from the zoo, name both layers with distill.feature_layers. Received: feature_stride={stride}")
    return found[-1]


def apply(state: PipelineState, cfg, ctx) -> StageOutcome:
    """Builds the student, distills it from `state.model`; the student becomes the current model."""
    data = ctx.recipe.data
    student = model_from_spec(ctx.recipe.student, tuple(data.input_size), ctx.num_classes, ctx.seed)
    teacher = state.model
    if teacher.output_shape[-1] != student.output_shape[-1]:
        raise StageError(f"distill: the teacher predicts {teacher.output_shape[-1]} classes and the student "
                         f"{student.output_shape[-1]}; they must agree. Received: teacher output {teacher.output_shape}")
    frozen = _frozen(teacher)
    feature_layers = _feature_layers(frozen, student, cfg)
    distiller = Distiller(student, frozen, cfg, ctx.ignore_index, feature_layers)
    train, extras = _with_unlabeled(ctx)
    cached = ctx.augment is None and feature_layers is None
    if cached:
        extras["teacher_logits"] = _teacher_logits_once(distiller, train.images)
    fit = fit_segmentation(distiller, student, cfg, dataclasses.replace(ctx, train=train), extras=extras or None)
    record = {**fit, **save_stage_model(student, ctx), "student": student.name, "teacher": teacher.name,
              "kd_loss": cfg.kd_loss, "teacher_logits": "cached" if cached else "every step",
              "unlabeled_images": 0 if ctx.unlabeled is None else len(ctx.unlabeled),
              **({"feature_layers": list(feature_layers)} if feature_layers else {})}
    return StageOutcome(PipelineState(model=student, teacher=teacher), record)


def fine_tune_trainer(model, state: PipelineState, guidance, ctx, stage: str):
    """What a compression stage fits: `model` itself on the labels, or, given the stage's `distill:`
    section, a `Distiller` of `model` against the teacher the `distill` stage learned from.

    Example:
        >>> type(fine_tune_trainer(wrapped, state, LogitDistillation(kd_loss="cwd"), ctx, "prune")).__name__
        'Distiller'
    """
    if guidance is None:
        return model
    if state.teacher is None:
        raise StageError(f"{stage}.distill: the fine-tune learns from the teacher a 'distill' stage distilled from, "
                         f"and none ran before '{stage}'. Received: teacher=None")
    return Distiller(model, _frozen(state.teacher), guidance, ctx.ignore_index)


def fine_tune_loss(guidance) -> str:
    """The record's name for what a compression stage's fine-tune learned from."""
    return "cross-entropy" if guidance is None else f"cross-entropy + {guidance.kd_loss} on the teacher's logits"


def _frozen(teacher):
    """The teacher as the distiller holds it: under a tf.distribute strategy every variable the
    distiller holds must be the strategy's."""
    return copy_model(teacher) if tf.distribute.has_strategy() and isinstance(teacher, keras.Model) else teacher


def _feature_layers(teacher, student, cfg) -> tuple[str, str] | None:
    if not cfg.feature_weight:
        return None
    if not isinstance(teacher, keras.Model):
        raise StageError(f"distill.feature_weight: feature distillation reads the teacher's layers, which a "
                         f"{type(teacher).__name__} does not expose. Received: feature_weight={cfg.feature_weight}")
    names = cfg.feature_layers or (backbone_layer_at_stride(teacher, cfg.feature_stride),
                                   backbone_layer_at_stride(student, cfg.feature_stride))
    for role, model, name in (("teacher", teacher, names[0]), ("student", student, names[1])):
        if name not in {layer.name for layer in model.layers}:
            raise StageError(f"distill.feature_layers: the {role} {model.name} has no layer {name!r}. Received: {name!r}")
    log.info("  feature distillation: %s -> %s", names[1], names[0])
    return tuple(names)


def _with_unlabeled(ctx) -> tuple[SegmentationSplit, dict]:
    """The training split with `data.unlabeled`'s images added (every pixel ignore_index), and
    which images are labeled; the split alone when there are none."""
    if ctx.unlabeled is None:
        return ctx.train, {}
    train = ctx.train
    images = np.concatenate([train.images, ctx.unlabeled])
    labels = np.concatenate([train.labels, np.full(ctx.unlabeled.shape[:3], train.ignore_index, np.uint8)])
    labeled = np.arange(len(images)) < len(train)
    return SegmentationSplit(train.name, images, labels, train.ignore_index), {"labeled": labeled}


def _teacher_logits_once(distiller: Distiller, images: np.ndarray, batch_size: int = 16) -> np.ndarray:
    """The teacher's logits for every training image, as float16 to halve their memory."""
    log.info("  augmentation is off: the teacher's logits are computed once for %d images", len(images))
    return np.concatenate([
        distiller.teacher_logits(tf.constant(images[start : start + batch_size], tf.float32)).numpy().astype(np.float16)
        for start in progress(range(0, len(images), batch_size), desc="teacher logits", unit="batch")
    ])
