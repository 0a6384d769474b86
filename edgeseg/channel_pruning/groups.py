"""Which channels must be removed together: dependency groups read from a functional model's graph.

A channel space is the last axis of a tensor. A convolution or dense layer starts a new space (its
filters, which removal may drop) and consumes its input's space (the matching input slices of its
kernel). Layers that keep channels apart, as BatchNorm, activations, pooling and depthwise
convolutions do, pass their input's space on; elementwise merges (Add, Multiply, ...) tie their
inputs' spaces into one; a channel Concatenate lays its inputs' spaces side by side, so a layer
reading it consumes each at an offset. Union-find over these spaces gives the groups, as in
Torch-Pruning's DepGraph (Fang et al. 2023): every layer a group touches loses the same channels,
so a model pruned group by group still computes a well-formed function.

A group is pinned, and keeps every channel, when it holds the model's input or output, a layer the
caller named, or a layer whose treatment of channels edgeseg does not know (Reshape, Softmax, a
custom or Lambda layer, a nested model, a layer called twice, ...): never a failed run or a wrong
model because of an unknown layer.

Example::

    groups = find_groups(model, pinned_layers=["stem_conv"])
    [group.size for group in groups if group.pinned is None]
"""

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal, NamedTuple

import numpy as np

from edgeseg._keras import keras, tf

log = logging.getLogger("edgeseg")

Role = Literal["produces", "passes", "consumes"]


@dataclass(frozen=True)
class Member:
    """A layer's part in a group: it `produces` the channels (its filters), `passes` them through
    (per-channel parameters, if any), or `consumes` them (input slices of its kernel). `offset` is
    where the group's channels start on the layer's channel axis: past the channels a Concatenate
    put before them."""

    layer: str
    role: Role
    offset: int = 0


@dataclass(frozen=True)
class ChannelGroup:
    """Channels that must be removed together: `size` of them, in every member at its offset.

    `pinned` says why the group keeps every channel, or is None when it can shrink.
    """

    id: int
    size: int
    members: tuple[Member, ...]
    pinned: str | None = None


class WeightAxes(NamedTuple):
    """Where one of a layer's weights holds channels: `name` is the layer's attribute ("kernel",
    "gamma", ...), `inputs` the axis of its input channels and `outputs` that of its output (or
    passed) channels, each None when the weight has no such axis."""

    name: str
    inputs: int | None
    outputs: int | None


class LayerChannels(NamedTuple):
    """A layer's channel axes as (offset, group id) spans: of its input and of its output; a layer
    that passes channels has the same spans on both."""

    inputs: tuple[tuple[int, int], ...]
    outputs: tuple[tuple[int, int], ...]


@dataclass(frozen=True)
class _Rule:
    """How a layer type treats channels: `produces` new ones (with `width`, the config key of
    their count) or `passes` them, and the channel axes of its weights by attribute name."""

    role: Role
    axes: Mapping[str, tuple[int | None, int | None]]
    width: str | None = None


_CONV_AXES = {"kernel": (-2, -1), "bias": (None, 0)}
_BATCHNORM_AXES = dict.fromkeys(("gamma", "beta", "moving_mean", "moving_variance"), (None, 0))
_PASSING_TYPES = (
    keras.layers.ReLU,
    keras.layers.Activation,
    keras.layers.Rescaling,
    keras.layers.Dropout,
    keras.layers.SpatialDropout2D,
    keras.layers.UpSampling2D,
    keras.layers.Resizing,
    keras.layers.MaxPooling2D,
    keras.layers.AveragePooling2D,
    keras.layers.GlobalAveragePooling2D,
    keras.layers.GlobalMaxPooling2D,
    keras.layers.ZeroPadding2D,
    keras.layers.Cropping2D,
)
# Exact types: a subclass may treat channels its own way, so it is pinned like any unknown layer.
_RULES = {
    keras.layers.Conv2D: _Rule("produces", _CONV_AXES, "filters"),
    keras.layers.Conv2DTranspose: _Rule("produces", {"kernel": (-1, -2), "bias": (None, 0)}, "filters"),
    keras.layers.Dense: _Rule("produces", _CONV_AXES, "units"),
    keras.layers.DepthwiseConv2D: _Rule("passes", {"depthwise_kernel": (None, 2), "bias": (None, 0)}),
    keras.layers.BatchNormalization: _Rule("passes", _BATCHNORM_AXES),
    **{kind: _Rule("passes", {}) for kind in _PASSING_TYPES},
}
_ELEMENTWISE_MERGES = (
    keras.layers.Add,
    keras.layers.Subtract,
    keras.layers.Maximum,
    keras.layers.Minimum,
    keras.layers.Average,
    keras.layers.Multiply,
)
# Activations that act on each value alone; softmax and the like mix channels.
_ELEMENTWISE_ACTIVATIONS = {
    "linear", "relu", "relu6", "sigmoid", "hard_sigmoid", "tanh", "swish", "silu", "hard_silu", "hard_swish",
    "gelu", "elu", "selu", "softplus", "softsign", "exponential", "mish",
}  # fmt: skip


def find_groups(model, pinned_layers=()) -> list[ChannelGroup]:
    """The dependency groups of a functional model's channels, in the order the graph first meets them.

    Every channel of every tensor belongs to exactly one group, pinned or not; `pinned_layers`
    names layers whose channels, in and out, must not change. Each pinned group is logged with its
    reason.
    """
    if not getattr(model, "_is_graph_network", False):
        raise ValueError(f"model: expected a functional tf_keras model (built from keras.Input), received {type(model).__name__}")
    missing = sorted(set(pinned_layers) - {layer.name for layer in model.layers})
    if missing:
        raise ValueError(f"pinned_layers: expected names of layers of {model.name}, received {missing}")
    graph = _ChannelGraph()
    calls = _calls_per_layer(model)
    for node in _nodes_in_order(model):
        layer = node.layer
        inputs = [graph.spaces[id(tensor)] for tensor in node.keras_inputs]
        outputs = tf.nest.flatten(node.outputs)
        if isinstance(layer, keras.layers.InputLayer):
            graph.add_pinned_outputs(outputs, f"{layer.name} (InputLayer): the model's input")
            continue
        obstacle = _obstacle(layer, node, calls[layer.name])
        if obstacle is not None:
            reason = f"{layer.name} ({type(layer).__name__}): {obstacle}"
            graph.pin([space for spaces in inputs for space in spaces], reason)
            graph.add_pinned_outputs(outputs, reason)
        elif type(layer) is keras.layers.Concatenate:
            graph.concatenate(layer, inputs, outputs[0], _is_channel_axis(layer.axis, len(outputs[0].shape)))
        elif type(layer) in _ELEMENTWISE_MERGES:
            graph.merge(layer, inputs, node.keras_inputs, outputs[0])
        elif _RULES[type(layer)].role == "produces":
            graph.add_member(inputs[0], layer.name, "consumes")
            graph.spaces[id(outputs[0])] = [graph.new_space(outputs[0].shape[-1], Member(layer.name, "produces"))]
        else:
            graph.add_member(inputs[0], layer.name, "passes")
            graph.spaces[id(outputs[0])] = inputs[0]
        if layer.name in pinned_layers:
            reason = f"{layer.name} ({type(layer).__name__}): named in pinned_layers"
            graph.pin([space for tensor in [*node.keras_inputs, *outputs] for space in graph.spaces[id(tensor)]], reason)
    for tensor in model.outputs:
        layer = tensor._keras_history.layer
        graph.pin(graph.spaces[id(tensor)], f"{layer.name} ({type(layer).__name__}): the model's output")
    groups = graph.groups()
    for group in groups:
        if group.pinned is not None:
            log.info("  channel pruning: group %d (%d channels) keeps every channel: %s", group.id, group.size, group.pinned)
    return groups


def layers_matching(model, patterns) -> list[str]:
    """Names of the layers of `model` that any of the regular expressions `patterns` finds (`re.search`),
    e.g. a stage's `keep_layers`, for `find_groups`' `pinned_layers`."""
    return [layer.name for layer in model.layers if any(re.search(pattern, layer.name) for pattern in patterns)]


def weight_axes(layer) -> list[WeightAxes]:
    """The channel axes of each of `layer.weights`, in their order; both None for a weight of a
    layer type find_groups does not understand (its groups are pinned)."""
    rule = _RULES.get(type(layer))
    axes = rule.axes if rule else {}
    named = {
        id(getattr(layer, name)): WeightAxes(name, *pair) for name, pair in axes.items() if getattr(layer, name, None) is not None
    }
    return [named.get(id(weight), WeightAxes(weight.name, None, None)) for weight in layer.weights]


def width_key(layer) -> str | None:
    """The config key holding the number of channels a layer produces ("filters", "units"), if any."""
    rule = _RULES.get(type(layer))
    return None if rule is None else rule.width


def layer_channels(groups: list[ChannelGroup]) -> dict[str, LayerChannels]:
    """Each member layer's input and output channel axes as (offset, group id) spans, in order."""
    spans: dict[str, dict[str, list]] = {}
    for group in groups:
        for member in group.members:
            sides = spans.setdefault(member.layer, {"inputs": [], "outputs": []})
            if member.role != "produces":
                sides["inputs"].append((member.offset, group.id))
            if member.role != "consumes":
                sides["outputs"].append((member.offset, group.id))
    return {
        layer: LayerChannels(tuple(sorted(sides["inputs"])), tuple(sorted(sides["outputs"]))) for layer, sides in spans.items()
    }


class _ChannelGraph:
    """Channel spaces under union-find. A tensor's channel axis is a list of spaces, more than one
    after a Concatenate; each space records its members and, if pinned, why."""

    def __init__(self):
        self.parent: list[int] = []
        self.sizes: list[int] = []
        self.members: list[list[Member]] = []
        self.pins: list[tuple[int, str]] = []
        self.spaces: dict[int, list[int]] = {}  # id of a KerasTensor -> its channel axis as spaces

    def new_space(self, size, member: Member | None = None) -> int:
        self.parent.append(len(self.parent))
        self.sizes.append(size)
        self.members.append([member] if member else [])
        return len(self.parent) - 1

    def find(self, space: int) -> int:
        while self.parent[space] != space:
            self.parent[space] = self.parent[self.parent[space]]
            space = self.parent[space]
        return space

    def pin(self, spaces, reason: str):
        self.pins.extend((space, reason) for space in spaces)

    def add_pinned_outputs(self, outputs, reason: str):
        for tensor in outputs:
            # A tensor of unknown or no channel count still gets a space, so whatever reads it is pinned too.
            size = tensor.shape[-1] if tensor.shape.rank else 1
            space = self.new_space(size or 0)
            self.pin([space], reason)
            self.spaces[id(tensor)] = [space]

    def add_member(self, spaces, layer: str, role: Role):
        offset = 0
        for space in spaces:
            self.members[space].append(Member(layer, role, offset))
            offset += self.sizes[space]

    def tie(self, first, second, layer):
        """Makes two channel axes one, space by space; axes split differently are pinned instead."""
        if [self.sizes[space] for space in first] != [self.sizes[space] for space in second]:
            self.pin(
                first + second,
                f"{layer.name} ({type(layer).__name__}): ties a concatenation to channels split differently",
            )
            return
        for a, b in zip(first, second):
            self.parent[self.find(a)] = self.find(b)

    def merge(self, layer, inputs, tensors, output):
        """An elementwise merge: every input as wide as the output is tied to it; a one-channel
        input is broadcast and keeps its own space."""
        full = [spaces for spaces, tensor in zip(inputs, tensors) if tensor.shape[-1] == output.shape[-1]]
        for other in full[1:]:
            self.tie(full[0], other, layer)
        self.add_member(full[0], layer.name, "passes")
        self.spaces[id(output)] = full[0]

    def concatenate(self, layer, inputs, output, on_channels: bool):
        if on_channels:
            self.spaces[id(output)] = [space for spaces in inputs for space in spaces]
        else:
            for other in inputs[1:]:
                self.tie(inputs[0], other, layer)
            self.spaces[id(output)] = inputs[0]
        self.add_member(self.spaces[id(output)], layer.name, "passes")

    def groups(self) -> list[ChannelGroup]:
        roots: dict[int, int] = {}
        for space in range(len(self.parent)):
            roots.setdefault(self.find(space), len(roots))
        members: list[list[Member]] = [[] for _ in roots]
        reasons: list[list[str]] = [[] for _ in roots]
        for space in range(len(self.parent)):
            members[roots[self.find(space)]].extend(self.members[space])
        for space, reason in self.pins:
            found = reasons[roots[self.find(space)]]
            if reason not in found:
                found.append(reason)
        return [
            ChannelGroup(index, self.sizes[root], tuple(members[index]), "; ".join(reasons[index]) or None)
            for root, index in roots.items()
        ]


def _nodes_in_order(model):
    """The model's own call nodes (a layer may also have nodes in other models), inputs first and,
    at one depth, in the order of `model.layers`, so group ids follow the model's layer order."""
    position = {id(layer): index for index, layer in enumerate(model.layers)}
    return [
        node
        for depth in sorted(model._nodes_by_depth, reverse=True)
        for node in sorted(model._nodes_by_depth[depth], key=lambda node: position.get(id(node.layer), -1))
    ]


def _calls_per_layer(model) -> dict[str, int]:
    calls: dict[str, int] = {}
    for node in _nodes_in_order(model):
        calls[node.layer.name] = calls.get(node.layer.name, 0) + 1
    return calls


def _obstacle(layer, node, calls: int) -> str | None:
    """Why a layer's channels cannot change, or None if find_groups knows how it treats them."""
    if calls > 1:
        return f"called {calls} times, so its channels are shared between calls"
    outputs = tf.nest.flatten(node.outputs)
    if len(outputs) != 1 or not outputs[0].shape.rank or outputs[0].shape[-1] is None:
        return "its output has no known channel axis"
    if type(layer) is keras.layers.Concatenate or type(layer) in _ELEMENTWISE_MERGES:
        return None
    rule = _RULES.get(type(layer))
    if rule is None:
        return "edgeseg does not know how this layer treats channels"
    if getattr(layer, "data_format", "channels_last") != "channels_last":
        return f"data_format is {layer.data_format}, expected channels_last"
    unknown = [weight.name for weight in weight_axes(layer) if weight.inputs is None and weight.outputs is None]
    if unknown:
        return f"weights edgeseg does not know how to slice: {', '.join(unknown)}"
    return _config_obstacle(layer)


def _config_obstacle(layer) -> str | None:
    """Settings of a known layer type under which its channels are not independent."""
    config = layer.get_config()
    activation = config.get("activation")
    if activation is not None and not (isinstance(activation, str) and activation in _ELEMENTWISE_ACTIVATIONS):
        return f"activation {activation!r} is not elementwise"
    if config.get("groups", 1) != 1:
        return f"a grouped convolution (groups={config['groups']})"
    if config.get("depth_multiplier", 1) != 1:
        return f"depth_multiplier is {config['depth_multiplier']}, expected 1"
    if isinstance(layer, keras.layers.BatchNormalization) and not _is_channel_axis(layer.axis, len(layer.input_shape)):
        return f"normalizes axis {list(layer.axis)}, not the channel axis"
    if isinstance(layer, keras.layers.Rescaling) and (np.size(config["scale"]) > 1 or np.size(config["offset"]) > 1):
        return "a per-channel scale or offset"
    return None


def _is_channel_axis(axis, rank: int) -> bool:
    """Whether `axis` (an int, or a list as BatchNormalization keeps it) is the last axis alone."""
    axes = [axis] if isinstance(axis, int) else list(axis)
    return [value % rank for value in axes] == [rank - 1]
