"""Per-pixel losses that skip `ignore_index` pixels.

Example::

    loss = masked_cross_entropy(labels, logits, ignore_index=255)
    loss = label_loss(labels, logits, ignore_index=255, lovasz_weight=1.0)
"""

import numpy as np

from edgeseg._keras import keras, tf


def masked_cross_entropy(labels, logits, ignore_index: int, class_weights=None, hardest_fraction: float | None = None):
    """Softmax cross-entropy averaged over the pixels whose label is not `ignore_index`.

    `class_weights` (one per class id) weight each pixel by its label, normalized by the summed
    weights. `hardest_fraction` (OHEM) keeps only that fraction of labeled pixels with the
    highest loss in the batch (ties at the cut are all kept).
    """
    labels = tf.cast(labels, tf.int32)
    valid = tf.cast(labels != ignore_index, logits.dtype)
    safe_labels = tf.where(labels == ignore_index, 0, labels)
    per_pixel = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=safe_labels, logits=logits)
    weights = valid
    if hardest_fraction is not None:
        losses = tf.reshape(per_pixel * valid - (1.0 - valid), [-1])  # ignored pixels sort last
        count = tf.maximum(1, tf.cast(tf.math.ceil(hardest_fraction * tf.reduce_sum(valid)), tf.int32))
        cut = tf.math.top_k(losses, count).values[-1]
        weights *= tf.cast(per_pixel >= cut, logits.dtype)
    if class_weights is not None:
        weights *= tf.gather(tf.constant(class_weights, logits.dtype), safe_labels)
    return tf.reduce_sum(per_pixel * weights) / tf.maximum(tf.reduce_sum(weights), 1e-6)


def lovasz_softmax(labels, logits, ignore_index: int):
    """The Lovasz-softmax loss (Berman et al. 2018): a convex surrogate of 1 - IoU for each class
    present in the batch's labels, averaged over those classes, so a thin class counts as much as
    the road, as it does in mIoU. Pixels labeled `ignore_index` take no part.

    Example::

        float(lovasz_softmax(np.zeros([1, 2, 2]), np.zeros([1, 2, 2, 3]), 255))   # 0.667: uniform guess
    """
    num_classes = logits.shape[-1]
    labels = tf.reshape(tf.cast(labels, tf.int32), [-1])
    probabilities = tf.reshape(tf.nn.softmax(tf.cast(logits, tf.float32)), [-1, num_classes])
    labeled = labels != ignore_index
    labels, probabilities = tf.boolean_mask(labels, labeled), tf.boolean_mask(probabilities, labeled)
    # [classes, pixels]: each class's foreground and its errors, sorted by error, largest first.
    foreground = tf.transpose(tf.one_hot(labels, num_classes, dtype=tf.float32))
    errors = tf.abs(foreground - tf.transpose(probabilities))
    # argsort, not top_k: top_k's gradient fails on a batch with no labeled pixel (k=0).
    order = tf.argsort(errors, axis=1, direction="DESCENDING")
    sorted_errors = tf.gather(errors, order, batch_dims=1)
    sorted_foreground = tf.gather(foreground, order, batch_dims=1)
    # The Jaccard loss's gradient along the sorted errors (the Lovasz extension's weights).
    total = tf.reduce_sum(sorted_foreground, axis=1, keepdims=True)
    intersection = total - tf.cumsum(sorted_foreground, axis=1)
    union = total + tf.cumsum(1.0 - sorted_foreground, axis=1)
    jaccard = 1.0 - intersection / union
    weights = tf.concat([jaccard[:, :1], jaccard[:, 1:] - jaccard[:, :-1]], axis=1)
    per_class = tf.reduce_sum(sorted_errors * tf.stop_gradient(weights), axis=1)
    present = tf.cast(total[:, 0] > 0, tf.float32)
    return tf.cast(tf.reduce_sum(per_class * present) / tf.maximum(tf.reduce_sum(present), 1.0), logits.dtype)


def label_loss(
    labels, logits, ignore_index: int, class_weights=None, hardest_fraction: float | None = None, lovasz_weight: float = 0.0
):
    """What a model learns from the labels: `masked_cross_entropy`, plus `lovasz_weight` times
    `lovasz_softmax` when that is not 0."""
    loss = masked_cross_entropy(labels, logits, ignore_index, class_weights, hardest_fraction)
    if lovasz_weight:
        # On every second row and column: its sort costs 0.65 s per CamVid batch at full size, a
        # quarter of that here, and a two-pixel-wide pole still shows in every other column.
        loss += lovasz_weight * lovasz_softmax(labels[:, ::2, ::2], logits[:, ::2, ::2], ignore_index)
    return loss


def median_frequency_weights(labels: np.ndarray, num_classes: int, ignore_index: int) -> list[float]:
    """Median frequency balancing (Eigen & Fergus 2015): median(freq) / freq(c) per class.

    freq(c) is the class's pixels over all labeled pixels of the images where it appears; a class
    that never appears gets weight 1.

    Example::

        median_frequency_weights(np.array([[[0, 0, 0, 1]]]), 2, 255)
    """
    labeled = labels != ignore_index
    frequencies = []
    for class_id in range(num_classes):
        present = (labels == class_id).any(axis=tuple(range(1, labels.ndim)))
        pixels = np.count_nonzero(labels[present] == class_id)
        total = np.count_nonzero(labeled[present])
        frequencies.append(pixels / total if pixels else None)
    median = float(np.median([f for f in frequencies if f is not None]))
    return [float(median / f) if f else 1.0 for f in frequencies]


def distillation_loss(
    labels,
    student_logits,
    teacher_logits,
    ignore_index: int,
    temperature: float,
    kd_weight: float,
    kd_loss: str = "kl",
    unlabeled=None,
    lovasz_weight: float = 0.0,
):
    """`(1 - kd_weight) * label_loss + kd_weight * T^2 * KD(teacher, student)`; the label loss is
    cross-entropy, plus `lovasz_weight` times Lovasz-softmax.

    `kl`: KL(softmax(t/T) || softmax(s/T)) over classes, per pixel, averaged over the same labeled
    pixels as the CE term, so padding added by augmentation teaches nothing, plus every pixel of
    the images `unlabeled` ([N] bool) marks, which have no labels and learn from the teacher alone.
    `cwd`: channel-wise distillation (Shu et al. 2021), see `channel_wise_divergence`.
    """
    labels = tf.cast(labels, tf.int32)
    if kd_loss == "cwd":
        kd = channel_wise_divergence(student_logits, teacher_logits, temperature)
    else:
        taught = labels != ignore_index
        if unlabeled is not None:
            taught = taught | tf.cast(unlabeled, tf.bool)[:, None, None]
        taught = tf.cast(taught, student_logits.dtype)
        kd = tf.reduce_sum(_kl(teacher_logits / temperature, student_logits / temperature, axis=-1) * taught) / tf.maximum(
            tf.reduce_sum(taught), 1.0
        )
    from_labels = label_loss(labels, student_logits, ignore_index, lovasz_weight=lovasz_weight)
    return (1.0 - kd_weight) * from_labels + kd_weight * temperature**2 * kd


def channel_wise_divergence(student_logits, teacher_logits, temperature: float):
    """KL between teacher and student of each class channel's softmax over spatial positions,
    averaged over channels and images: where in the image each class is, rather than which class
    each pixel is. Every pixel counts, since the softmax runs over the whole map.

    Example::

        float(channel_wise_divergence(logits, logits, 4.0))
    """
    batch, channels = tf.shape(student_logits)[0], tf.shape(student_logits)[-1]

    # [N, H, W, C] -> [N, C, H*W]: one spatial distribution per image and channel.
    def per_channel(logits):
        return tf.reshape(tf.transpose(logits, [0, 3, 1, 2]), [batch, channels, -1]) / temperature

    return tf.reduce_mean(_kl(per_channel(teacher_logits), per_channel(student_logits), axis=-1))


def _kl(target_logits, predicted_logits, axis: int):
    """KL(softmax(target) || softmax(predicted)) along `axis`."""
    target_log_probs = tf.nn.log_softmax(target_logits, axis=axis)
    predicted_log_probs = tf.nn.log_softmax(predicted_logits, axis=axis)
    return tf.reduce_sum(tf.exp(target_log_probs) * (target_log_probs - predicted_log_probs), axis=axis)


@keras.saving.register_keras_serializable(package="edgeseg")
class MaskedCrossEntropy(keras.losses.Loss):
    """`label_loss` as a Keras loss, so a compiled model can still be saved. The name predates the
    Lovasz term and stays: saved models name their loss by it."""

    def __init__(
        self,
        ignore_index: int = 255,
        class_weights=None,
        hardest_fraction=None,
        lovasz_weight: float = 0.0,
        name: str = "masked_cross_entropy",
        **kwargs,
    ):
        super().__init__(name=name, **kwargs)
        self.ignore_index, self.class_weights, self.hardest_fraction = ignore_index, class_weights, hardest_fraction
        self.lovasz_weight = lovasz_weight

    def call(self, labels, logits):
        return label_loss(labels, logits, self.ignore_index, self.class_weights, self.hardest_fraction, self.lovasz_weight)

    def get_config(self):
        return {
            **super().get_config(),
            "ignore_index": self.ignore_index,
            "class_weights": self.class_weights,
            "hardest_fraction": self.hardest_fraction,
            "lovasz_weight": self.lovasz_weight,
        }
