"""A new model without the removed channels: same layers, names and types, narrower and sliced.

Every layer is rebuilt from its config, with the produced width ("filters", "units") set to the
channels it keeps, and given its weights sliced along their channel axes: a kernel's output and
input channels, a depthwise kernel's channels, a bias, BatchNorm's four vectors. The result is made
of the same plain Keras layers as its input, so it converts and wraps in TF-MOT like any zoo model.

Example::

    groups = find_groups(model)
    smaller = remove_channels(model, groups, {groups[1].id: np.arange(8)})
"""

import numpy as np

from edgeseg._keras import keras
from edgeseg.channel_pruning.groups import ChannelGroup, layer_channels, weight_axes, width_key


def remove_channels(model, groups: list[ChannelGroup], kept: dict) -> keras.Model:
    """A new functional model keeping, for each group id in `kept`, the channels at those indices.

    Groups absent from `kept` keep all their channels; a pinned group may only keep them all.
    `model` is left unchanged.
    """
    unknown = sorted(set(kept) - {group.id for group in groups})
    if unknown:
        raise ValueError(f"kept: expected ids of the given groups (0..{len(groups) - 1}), received {unknown}")
    indices = {group.id: _kept_indices(group, kept.get(group.id)) for group in groups}
    channels = layer_channels(groups)

    def along(spans) -> np.ndarray:
        return np.concatenate([offset + indices[group] for offset, group in spans]).astype(np.int64)

    def clone_layer(layer):
        config, weights, input_shape = layer.get_config(), layer.get_weights(), layer.input_shape
        spans = channels.get(layer.name)
        # A layer in no group is one find_groups does not understand: its groups are pinned, so it is copied as it is.
        if spans is not None:
            kept_inputs, kept_outputs = along(spans.inputs), along(spans.outputs)
            if width_key(layer) is not None:
                config[width_key(layer)] = len(kept_outputs)
            if weights:
                input_shape = (*input_shape[:-1], len(kept_inputs))
                weights = [_sliced(array, axes, kept_inputs, kept_outputs) for array, axes in zip(weights, weight_axes(layer))]
        fresh = layer.__class__.from_config(config)
        if weights:
            fresh.build(input_shape)
            fresh.set_weights(weights)
        return fresh

    return keras.models.clone_model(model, clone_function=clone_layer)


def _kept_indices(group: ChannelGroup, chosen) -> np.ndarray:
    """`chosen` as sorted indices, checked against the group; all of them when None."""
    if chosen is None:
        return np.arange(group.size)
    found = np.unique(np.asarray(chosen, dtype=np.int64))
    if len(found) != len(chosen) or not len(found) or found[0] < 0 or found[-1] >= group.size:
        raise ValueError(
            f"kept[{group.id}]: expected 1 to {group.size} distinct indices in 0..{group.size - 1}, received "
            f"{len(chosen)} ({len(found)} distinct) in {found.min() if len(found) else '-'}..{found.max() if len(found) else '-'}"
        )
    if group.pinned is not None and len(found) != group.size:
        raise ValueError(
            f"kept[{group.id}]: expected all {group.size} channels of a pinned group ({group.pinned}), received {len(found)}"
        )
    return found


def _sliced(array: np.ndarray, axes, kept_inputs: np.ndarray, kept_outputs: np.ndarray) -> np.ndarray:
    if axes.inputs is not None:
        array = np.take(array, kept_inputs, axis=axes.inputs)
    if axes.outputs is not None:
        array = np.take(array, kept_outputs, axis=axes.outputs)
    return array
