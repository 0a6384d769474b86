"""Which channels to keep: a global ranking that meets a MACs or parameter budget.

Layers lose different fractions of their channels: every group's next chunk of lowest-importance
channels competes with every other group's, so the least important go first wherever they are
(uneven widths keep more accuracy than one width multiplier). A chunk keeps each pruned group's
width a multiple of `round_to` (the first chunk may be smaller, to reach one), which int8 kernels
run fastest; no group goes below `min_channels`. MACs and parameters of a candidate are computed
from the groups' widths, as `edgeseg.profile` counts them, so a plan costs no model to evaluate and
a caller can search over targets cheaply (a latency target, by bisection on the MACs fraction).

Example::

    kept = allocate(model, groups, channel_importance(model, groups, "l1"), ("macs", 0.5))
    plan_summary(model, groups, kept)["macs"]
"""

import math
from typing import NamedTuple

import numpy as np

from edgeseg.channel_pruning.groups import ChannelGroup, layer_channels, weight_axes, width_key
from edgeseg.profile import layer_costs

TARGET_KINDS = ("macs", "params")


class _Term(NamedTuple):
    """Part of a layer's MACs or parameters: `coefficient` times the product, over `sides`, of the
    summed widths of a side's groups (a channel axis, as (offset, group id) spans)."""

    kind: str
    coefficient: float
    sides: tuple[tuple[int, ...], ...]


class CostModel:
    """A model's MACs and parameters as functions of its groups' widths (group id -> channels).

    A convolution's MACs and kernel grow with its input and output widths, a depthwise kernel's and
    BatchNorm's with the channels they pass; layers outside any group cost what they cost now.
    At full widths the totals are `edgeseg.profile`'s.
    """

    def __init__(self, model, groups: list[ChannelGroup]):
        self.full_widths = {group.id: group.size for group in groups}
        channels = layer_channels(groups)
        self._terms: list[_Term] = []
        for row in layer_costs(model):
            layer, spans = model.get_layer(row["layer"]), channels.get(row["layer"])
            if spans is None:
                self._terms += [_Term("macs", row["macs"], ()), _Term("params", row["params"], ())]
                continue
            inputs, outputs = tuple(group for _, group in spans.inputs), tuple(group for _, group in spans.outputs)
            # A layer that passes channels has one channel axis: its inputs are its outputs.
            self._add("macs", row["macs"], (inputs, outputs) if width_key(layer) else (outputs,))
            for weight, axes in zip(layer.weights, weight_axes(layer)):
                sides = (inputs,) * (axes.inputs is not None) + (outputs,) * (axes.outputs is not None)
                self._add("params", weight.shape.num_elements(), sides)
        self._terms_of = {
            group: [term for term in self._terms if any(group in side for side in term.sides)] for group in self.full_widths
        }

    def cost(self, kind: str, widths: dict) -> float:
        """Total MACs or parameters at `widths`."""
        return sum(_value(term, widths) for term in self._terms if term.kind == kind)

    def saving(self, kind: str, widths: dict, group: int, narrower: int) -> float:
        """How much `kind` narrowing `group` from its width in `widths` to `narrower` saves."""
        changed = {**widths, group: narrower}
        return sum(_value(term, widths) - _value(term, changed) for term in self._terms_of[group] if term.kind == kind)

    def widths(self, kept: dict) -> dict:
        """The width of every group under a plan: its kept channels, or all of them if absent."""
        return {group: len(kept[group]) if group in kept else size for group, size in self.full_widths.items()}

    def _add(self, kind: str, total: float, sides):
        """A term worth `total` at full widths."""
        full = math.prod(sum(self.full_widths[group] for group in side) for side in sides)
        self._terms.append(_Term(kind, total / full, sides))


def allocate(
    model,
    groups: list[ChannelGroup],
    importance: dict,
    target: tuple[str, float],
    round_to: int = 8,
    min_channels: int = 8,
    cost_weighted: bool = False,
) -> dict[int, np.ndarray]:
    """Kept channel indices per group for `target` = ("macs" | "params", fraction to keep at most).

    Chunk by chunk, removes the one whose channels have the lowest mean importance (with
    `cost_weighted`, the lowest summed importance per MAC or parameter it saves) until the target is
    met; a target out of reach at `min_channels` is a ValueError saying what is reachable. Only
    groups in `importance` shrink (drop a group from it to keep it whole); the plan has an entry
    for each of them.
    """
    kind, fraction = _checked_target(target)
    if round_to < 1 or min_channels < 1:
        raise ValueError(f"round_to and min_channels: expected at least 1, received {round_to} and {min_channels}")
    costs = CostModel(model, groups)
    shrinkable = [group for group in groups if group.pinned is None and group.id in importance]
    scores = {group.id: _checked_scores(importance, group) for group in shrinkable}
    order = {group: np.argsort(values, kind="stable") for group, values in scores.items()}
    widths = dict(costs.full_widths)
    budget = fraction * costs.cost(kind, widths) * (1 + 1e-9)
    while costs.cost(kind, widths) > budget:
        best = None
        for group in shrinkable:
            width = widths[group.id]
            narrower = _next_width(width, round_to, min_channels)
            saving = 0.0 if narrower is None else costs.saving(kind, widths, group.id, narrower)
            if narrower is None or saving <= 0:
                continue
            chunk = scores[group.id][order[group.id][group.size - width : group.size - narrower]]
            # On a tie (importance that cannot tell channels apart) the group that kept the most goes first.
            priority = (chunk.sum() / saving if cost_weighted else chunk.mean(), -width / group.size)
            if best is None or priority < best[0]:
                best = (priority, group.id, narrower)
        if best is None:
            reached = costs.cost(kind, widths) / costs.cost(kind, costs.full_widths)
            raise ValueError(
                f"target: expected a {kind} fraction within reach, received {fraction}; with round_to={round_to} "
                f"and min_channels={min_channels} the narrowest model keeps {reached:.3f}"
            )
        widths[best[1]] = best[2]
    return {group.id: np.sort(order[group.id][group.size - widths[group.id] :]) for group in shrinkable}


def uniform_plan(
    groups: list[ChannelGroup], importance: dict, fraction: float, round_to: int = 8, min_channels: int = 8
) -> dict[int, np.ndarray]:
    """The same `fraction` of channels kept in every group of `importance`, the most important ones,
    each width rounded to a multiple of `round_to` and not below `min_channels`: the width
    multiplier that `allocate`'s uneven widths are measured against."""
    narrowest = math.ceil(min_channels / round_to) * round_to
    plan = {}
    for group in groups:
        if group.pinned is None and group.id in importance:
            width = min(group.size, max(narrowest, round(group.size * fraction / round_to) * round_to))
            plan[group.id] = np.sort(np.argsort(_checked_scores(importance, group), kind="stable")[group.size - width :])
    return plan


def uniform_allocate(
    model, groups: list[ChannelGroup], importance: dict, target: tuple[str, float], round_to: int = 8, min_channels: int = 8
) -> dict[int, np.ndarray]:
    """`uniform_plan` with the largest fraction whose plan meets `target`, as `allocate` takes it:
    one width multiplier for every group, to measure `allocate`'s uneven widths against."""
    kind, fraction = _checked_target(target)
    costs = CostModel(model, groups)
    budget = fraction * costs.cost(kind, costs.full_widths) * (1 + 1e-9)

    def cost_at(kept_fraction: float) -> float:
        return costs.cost(kind, costs.widths(uniform_plan(groups, importance, kept_fraction, round_to, min_channels)))

    kept_fraction = largest_within(cost_at, budget, low=0.0, high=1.0)
    if kept_fraction is None:
        reached = cost_at(0.0) / costs.cost(kind, costs.full_widths)
        raise ValueError(
            f"target: expected a {kind} fraction within reach, received {fraction}; the narrowest uniform "
            f"model keeps {reached:.3f}"
        )
    return uniform_plan(groups, importance, kept_fraction, round_to, min_channels)


def kept_channels(
    model,
    groups: list[ChannelGroup],
    importance: dict,
    target: tuple[str, float],
    allocation: str = "global",
    round_to: int = 8,
    min_channels: int = 8,
    cost_weighted: bool = False,
) -> dict[int, np.ndarray]:
    """The plan for `target` by `allocation`: "global" (`allocate`: one ranking over all groups, so
    layers lose different fractions) or "uniform" (`uniform_allocate`: one width multiplier)."""
    if allocation == "global":
        return allocate(model, groups, importance, target, round_to, min_channels, cost_weighted)
    if allocation == "uniform":
        return uniform_allocate(model, groups, importance, target, round_to, min_channels)
    raise ValueError(f"allocation: expected 'global' or 'uniform', received {allocation!r}")


def narrowest_fraction(
    model, groups: list[ChannelGroup], importance: dict, kind: str, round_to: int = 8, min_channels: int = 8
) -> float:
    """The `kind` ("macs" or "params") fraction left when every group of `importance` is as narrow as
    `round_to` and `min_channels` allow: the smallest target `allocate` can meet."""
    costs = CostModel(model, groups)
    widths = dict(costs.full_widths)
    for group in groups:
        if group.pinned is None and group.id in importance:
            while (narrower := _next_width(widths[group.id], round_to, min_channels)) is not None:
                widths[group.id] = narrower
    return costs.cost(kind, widths) / costs.cost(kind, costs.full_widths)


def largest_within(cost_at, budget: float, low: float, high: float, steps: int = 30) -> float | None:
    """The largest x in [low, high] with `cost_at(x) <= budget`, by bisection (cost grows with x),
    or None when even `low` costs too much. Measured costs (a latency) make `cost_at` expensive;
    `steps` bounds the calls.

    Example:
        >>> round(largest_within(lambda x: x * x, 0.25, 0.0, 1.0), 3)
        0.5
    """
    if cost_at(low) > budget:
        return None
    if cost_at(high) <= budget:
        return high
    for _ in range(steps):
        middle = (low + high) / 2
        low, high = (middle, high) if cost_at(middle) <= budget else (low, middle)
    return low


def plan_summary(model, groups: list[ChannelGroup], kept: dict) -> dict:
    """MACs and parameters before and after a plan, and each producing layer's width before and after.

    Example::

        summary = plan_summary(model, groups, kept)
        summary["macs"]["after"] / summary["macs"]["before"]
    """
    costs = CostModel(model, groups)
    after = costs.widths(kept)
    produced = {member.layer: group for group in groups for member in group.members if member.role == "produces"}
    layers = [
        {"layer": layer.name, "type": type(layer).__name__, "before": group.size, "after": after[group.id]}
        for layer in model.layers
        if (group := produced.get(layer.name)) is not None
    ]
    totals = {
        kind: {"before": round(costs.cost(kind, costs.full_widths)), "after": round(costs.cost(kind, after))}
        for kind in TARGET_KINDS
    }
    return {**totals, "layers": layers}


def _value(term: _Term, widths: dict) -> float:
    return term.coefficient * math.prod(sum(widths[group] for group in side) for side in term.sides)


def _next_width(width: int, round_to: int, min_channels: int) -> int | None:
    """The next narrower multiple of `round_to`, or None below `min_channels`."""
    narrower = (width - 1) // round_to * round_to
    return narrower if narrower >= min_channels else None


def _checked_target(target) -> tuple[str, float]:
    kind, fraction = target
    if kind not in TARGET_KINDS or not 0 < fraction <= 1:
        raise ValueError(f"target: expected (macs or params, a fraction in (0, 1]), received {target}")
    return kind, fraction


def _checked_scores(importance: dict, group: ChannelGroup) -> np.ndarray:
    scores = np.asarray(importance[group.id], dtype=np.float64)
    if scores.shape != (group.size,):
        raise ValueError(f"importance[{group.id}]: expected {group.size} scores, received shape {scores.shape}")
    return scores
