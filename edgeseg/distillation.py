"""Distillation: a student learns from a frozen teacher's logits (and optionally its features)
beside the labels. The `distill` stage trains a new student this way; `prune` and `cluster` use the
same `Distiller` to fine-tune against the teacher (`fine_tune_trainer`).

A teacher made for another input size sees the batch resized to its size, and its logits are
resized to the student's. With augmentation off, the teacher's input never changes, so its logits
can be computed once (`teacher_logits_once`) instead of every step.
"""

import logging

import numpy as np

from edgeseg._keras import keras, tf
from edgeseg.data.split import SegmentationSplit
from edgeseg.errors import StageError
from edgeseg.losses import distillation_loss
from edgeseg.models.copying import copy_model
from edgeseg.models.imagenet import BACKBONE_LAYER_PREFIXES
from edgeseg.progress import progress

log = logging.getLogger("edgeseg")


class Distiller(keras.Model):
    """Trains `student` against a frozen `teacher` run in inference mode on the same augmented batch.

    With `feature_layers` (teacher layer, student layer), the student's features also learn the
    teacher's through a 1x1 adapter trained with it (and dropped afterwards). `lovasz_weight` adds
    Lovasz-softmax to the cross-entropy on the labels (the training stage's setting).
    """

    def __init__(
        self,
        student,
        teacher,
        cfg,
        ignore_index: int,
        feature_layers: tuple[str, str] | None = None,
        lovasz_weight: float = 0.0,
    ):
        super().__init__()
        self.student, self.teacher, self.cfg, self.ignore_index = student, teacher, cfg, ignore_index
        self.lovasz_weight = lovasz_weight
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
                labels,
                student_logits,
                teacher_logits,
                self.ignore_index,
                self.cfg.temperature,
                self.cfg.kd_weight,
                self.cfg.kd_loss,
                unlabeled,
                self.lovasz_weight,
            )
            if self.feature_layers is not None:
                loss += self.cfg.feature_weight * self._feature_error(student_features, teacher_features)
            # Replicas' gradients and returned values are summed, so each replica's share of the mean
            # is 1/replicas of its own.
            replica_loss = loss / tf.distribute.get_strategy().num_replicas_in_sync
        variables = self.trained_variables()
        self.optimizer.apply_gradients(zip(tape.gradient(replica_loss, variables), variables))
        return {"loss": replica_loss}

    def trained_variables(self) -> list:
        """The variables a step updates: the student's and, with feature distillation, the adapter's
        (built on the first call, so that an optimizer can be built on them before training)."""
        if self.feature_layers is None:
            return self.student.trainable_variables
        if not self.adapter.built:
            self.adapter.build(self.student_features.outputs[1].shape)
        return self.student.trainable_variables + self.adapter.trainable_variables

    def _feature_error(self, student_features, teacher_features):
        adapted = self.adapter(student_features)
        if tuple(adapted.shape[1:3]) != tuple(teacher_features.shape[1:3]):
            adapted = tf.image.resize(adapted, teacher_features.shape[1:3], method="bilinear")
        return tf.reduce_mean(tf.square(adapted - teacher_features))


def backbone_layer_at_stride(model, stride: int) -> str:
    """The name of `model`'s last backbone layer whose output is the input size / `stride`: the
    deepest features at that stride, for feature distillation of zoo models.

    Example::

        backbone_layer_at_stride(build_model(ModelSpec(arch="lraspp"), (64, 64), 4), 8)   # 'block6_expand_relu'
    """
    height = model.input_shape[1]
    found = [
        layer.name
        for layer in model.layers
        if layer.name.startswith(BACKBONE_LAYER_PREFIXES)
        and len(layer.output_shape) == 4
        and layer.output_shape[1] * stride == height
    ]
    if not found:
        raise StageError(
            f"distill.feature_stride: {model.name} has no backbone layer at stride {stride}; for a model "
            f"not from the zoo, name both layers with distill.feature_layers. Received: feature_stride={stride}"
        )
    return found[-1]


def fine_tune_trainer(model, teacher, guidance, ignore_index: int, stage: str, lovasz_weight: float = 0.0):
    """What a compression stage fits: `model` itself on the labels, or, given the stage's `distill:`
    section, a `Distiller` of `model` against `teacher` (the one the `distill` stage learned from),
    whose label loss adds `lovasz_weight` times Lovasz-softmax as the stage's own would.

    Example::

        trainer = fine_tune_trainer(wrapped, state.teacher, LogitDistillation(kd_loss="cwd"), 255, "prune")
    """
    if guidance is None:
        return model
    if teacher is None:
        raise StageError(
            f"{stage}.distill: the fine-tune learns from the teacher a 'distill' stage distilled from, "
            f"and none ran before '{stage}'. Received: teacher=None"
        )
    return Distiller(model, frozen_teacher(teacher), guidance, ignore_index, lovasz_weight=lovasz_weight)


def fine_tune_loss(guidance, guide: str = "the teacher", lovasz_weight: float = 0.0) -> str:
    """The record's name for what a compression stage's fine-tune learned from; `guide` names the
    model whose logits it learned from."""
    from_labels = f"cross-entropy + {lovasz_weight:g} x Lovasz-softmax" if lovasz_weight else "cross-entropy"
    return from_labels if guidance is None else f"{from_labels} + {guidance.kd_loss} on {guide}'s logits"


def frozen_teacher(teacher):
    """The teacher as the distiller holds it: under a tf.distribute strategy every variable the
    distiller holds must be the strategy's."""
    return copy_model(teacher) if tf.distribute.has_strategy() and isinstance(teacher, keras.Model) else teacher


def feature_layer_pair(teacher, student, cfg) -> tuple[str, str] | None:
    if not cfg.feature_weight:
        return None
    if not isinstance(teacher, keras.Model):
        raise StageError(
            f"distill.feature_weight: feature distillation reads the teacher's layers, which a "
            f"{type(teacher).__name__} does not expose. Received: feature_weight={cfg.feature_weight}"
        )
    names = cfg.feature_layers or (
        backbone_layer_at_stride(teacher, cfg.feature_stride),
        backbone_layer_at_stride(student, cfg.feature_stride),
    )
    for role, model, name in (("teacher", teacher, names[0]), ("student", student, names[1])):
        if name not in {layer.name for layer in model.layers}:
            raise StageError(f"distill.feature_layers: the {role} {model.name} has no layer {name!r}. Received: {name!r}")
    log.info("  feature distillation: %s -> %s", names[1], names[0])
    return tuple(names)


def with_unlabeled(train: SegmentationSplit, unlabeled: np.ndarray | None) -> tuple[SegmentationSplit, dict]:
    """The training split with `unlabeled` images added (every pixel ignore_index), and which
    images are labeled; the split alone when there are none."""
    if unlabeled is None:
        return train, {}
    images = np.concatenate([train.images, unlabeled])
    labels = np.concatenate([train.labels, np.full(unlabeled.shape[:3], train.ignore_index, np.uint8)])
    labeled = np.arange(len(images)) < len(train)
    return SegmentationSplit(train.name, images, labels, train.ignore_index), {"labeled": labeled}


def teacher_logits_once(distiller: Distiller, images: np.ndarray, batch_size: int = 16) -> np.ndarray:
    """The teacher's logits for every training image, as float16 to halve their memory."""
    log.info("  augmentation is off: the teacher's logits are computed once for %d images", len(images))
    return np.concatenate(
        [
            distiller.teacher_logits(tf.constant(images[start : start + batch_size], tf.float32)).numpy().astype(np.float16)
            for start in progress(range(0, len(images), batch_size), desc="teacher logits", unit="batch")
        ]
    )
