"""Per-pixel losses that skip `ignore_index` pixels.

Example:
    >>> loss = masked_cross_entropy(labels, logits, ignore_index=255)
"""

from edgeseg._keras import keras, tf


def masked_cross_entropy(labels, logits, ignore_index: int):
    """Mean softmax cross-entropy over the pixels whose label is not `ignore_index`."""
    labels = tf.cast(labels, tf.int32)
    valid = tf.cast(labels != ignore_index, logits.dtype)
    safe_labels = tf.where(labels == ignore_index, 0, labels)
    per_pixel = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=safe_labels, logits=logits)
    return tf.reduce_sum(per_pixel * valid) / tf.maximum(tf.reduce_sum(valid), 1.0)


def distillation_loss(labels, student_logits, teacher_logits, ignore_index: int, temperature: float, kd_weight: float):
    """`(1 - kd_weight) * CE(labels) + kd_weight * T^2 * KL(softmax(t/T) || softmax(s/T))`, per pixel.

    The KL term is averaged over the same labeled pixels as the CE term, so padding added by
    augmentation teaches nothing.
    """
    labels = tf.cast(labels, tf.int32)
    valid = tf.cast(labels != ignore_index, student_logits.dtype)
    teacher_log_probs = tf.nn.log_softmax(teacher_logits / temperature, axis=-1)
    student_log_probs = tf.nn.log_softmax(student_logits / temperature, axis=-1)
    kl = tf.reduce_sum(tf.exp(teacher_log_probs) * (teacher_log_probs - student_log_probs), axis=-1)
    kd = tf.reduce_sum(kl * valid) / tf.maximum(tf.reduce_sum(valid), 1.0)
    ce = masked_cross_entropy(labels, student_logits, ignore_index)
    return (1.0 - kd_weight) * ce + kd_weight * temperature**2 * kd


@keras.saving.register_keras_serializable(package="edgeseg")
class MaskedCrossEntropy(keras.losses.Loss):
    """`masked_cross_entropy` as a Keras loss, so a compiled model can still be saved."""

    def __init__(self, ignore_index: int = 255, name: str = "masked_cross_entropy", **kwargs):
        super().__init__(name=name, **kwargs)
        self.ignore_index = ignore_index

    def call(self, labels, logits):
        return masked_cross_entropy(labels, logits, self.ignore_index)

    def get_config(self):
        return {**super().get_config(), "ignore_index": self.ignore_index}
