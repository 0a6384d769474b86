"""A score per channel of each group that may shrink: the lower, the sooner the channel goes.

`l1` and `l2` are the norms of the channel's weights in every member of its group, as in
Torch-Pruning's group magnitude: the producers' filters, the consumers' kernel input slices, the
depthwise kernels and BatchNorm scales it passes through. `bn_scale` is |gamma| of the group's
BatchNorm layers (Liu et al. 2017, network slimming), `l1` for a group without one. Each member's
scores are divided by their mean over the group's channels before the members are averaged, so a
layer with large weights does not outvote the others; each group's scores then average 1, which
makes a global ranking compare channels by how they stand in their own group.

`taylor` is the first-order Taylor estimate of the loss change when the channel is removed
(Molchanov et al. 2019): per batch, the squared sum of weight x gradient over all the channel's
parameters in the group, averaged over batches. It is in units of the loss, the same for every
group, so it is left unnormalized: a global ranking then removes what costs the loss least.

Example::

    scores = channel_importance(model, groups, "taylor", batches=[(images, labels)],
                                loss=lambda labels, logits: masked_cross_entropy(labels, logits, 255))
"""

from collections.abc import Callable, Iterable

import numpy as np

from edgeseg._keras import tf
from edgeseg.channel_pruning.groups import ChannelGroup, Member, weight_axes

CRITERIA = ("l1", "l2", "bn_scale", "taylor")
# The weights whose magnitude says how much a channel carries; biases and shifts say little.
_MAGNITUDE_WEIGHTS = ("kernel", "depthwise_kernel", "gamma")


def channel_importance(
    model, groups: list[ChannelGroup], criterion: str, batches: Iterable | None = None, loss: Callable | None = None
) -> dict[int, np.ndarray]:
    """Scores of each unpinned group's channels by `criterion`, by group id.

    `taylor` needs `batches` of (images float32 0..255 [N, H, W, 3], labels int32 [N, H, W]) and
    `loss(labels, logits)`, a scalar; the model runs in inference mode, so its BatchNorm statistics
    stay as they are.
    """
    if criterion not in CRITERIA:
        raise ValueError(f"criterion: expected one of {', '.join(CRITERIA)}, received {criterion!r}")
    free = [group for group in groups if group.pinned is None]
    if criterion == "taylor":
        if batches is None or loss is None:
            raise ValueError("taylor importance: expected batches and a loss, received None")
        return _taylor(model, free, batches, loss)
    values = {id(weight): weight.numpy() for weight in model.weights}
    return {group.id: _magnitude(model, group, criterion, values) for group in free}


def _magnitude(model, group: ChannelGroup, criterion: str, values: dict) -> np.ndarray:
    """The mean over members of each member's per-channel norm divided by its mean."""
    rows = [_channel_rows(model, member, group.size, values) for member in group.members]
    if criterion == "bn_scale":
        scales = [np.abs(found["gamma"][:, 0]) for found in rows if "gamma" in found]
        if scales:
            return _mean_of_normalized(scales)
        criterion = "l1"
    order = 1 if criterion == "l1" else 2
    norms = [np.linalg.norm(found[name], ord=order, axis=1) for found in rows for name in _MAGNITUDE_WEIGHTS if name in found]
    return _mean_of_normalized(norms)


def _taylor(model, groups: list[ChannelGroup], batches: Iterable, loss: Callable) -> dict[int, np.ndarray]:
    weights = model.trainable_weights
    totals = {group.id: np.zeros(group.size) for group in groups}
    count = 0
    for images, labels in batches:
        with tf.GradientTape() as tape:
            value = loss(tf.convert_to_tensor(labels), model(tf.convert_to_tensor(images, tf.float32), training=False))
        gradients = tape.gradient(value, weights)
        products = {
            id(weight): (weight * gradient).numpy() for weight, gradient in zip(weights, gradients) if gradient is not None
        }
        for group in groups:
            per_channel = np.zeros(group.size)
            for member in group.members:
                for rows in _channel_rows(model, member, group.size, products).values():
                    per_channel += rows.sum(axis=1)
            totals[group.id] += per_channel**2
        count += 1
    if not count:
        raise ValueError("taylor importance: expected at least one batch, received none")
    return {key: total / count for key, total in totals.items()}


def _channel_rows(model, member: Member, size: int, arrays: dict) -> dict[str, np.ndarray]:
    """By weight name, the member layer's weights that hold the group's channels as one row per
    channel ([size, n]), read from `arrays` (by id of a weight; a weight not in it is left out)."""
    layer = model.get_layer(member.layer)
    rows = {}
    for weight, axes in zip(layer.weights, weight_axes(layer)):
        axis = axes.inputs if member.role == "consumes" else axes.outputs
        if axis is not None and id(weight) in arrays:
            rows[axes.name] = np.moveaxis(arrays[id(weight)], axis, 0)[member.offset : member.offset + size].reshape(size, -1)
    return rows


def _mean_of_normalized(scores: list[np.ndarray]) -> np.ndarray:
    """Each score vector over its mean, averaged; an all-zero vector tells nothing and is left out."""
    normalized = [score / score.mean() for score in scores if score.mean() > 0]
    return np.mean(normalized, axis=0) if normalized else np.zeros_like(scores[0])
