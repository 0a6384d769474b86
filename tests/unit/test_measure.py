"""What untrained zoo models cost, measured side by side (edgeseg.measure): the costs tool's figures."""

import pytest

from edgeseg.errors import RecipeError
from edgeseg.measure import costs_markdown, zoo_costs


def test_zoo_costs_measure_each_named_model_and_channel_removal_makes_it_cheaper():
    costs = zoo_costs(["minimal-0.35-os32", "minimal-0.35-os32:0.5"], (32, 32), 4, rounds=2)
    full, pruned = costs.values()
    assert pruned["macs"] <= 0.5 * full["macs"] and pruned["params"] < full["params"] and pruned["bytes"] < full["bytes"]
    assert all(cost["latency_ms"]["1"] > 0 and cost["latency_ms"]["2"] > 0 for cost in costs.values())
    table = costs_markdown(costs).splitlines()
    assert len(table) == 4 and table[2].startswith("| minimal-0.35-os32 |") and "(1.00x)" in table[2]


def test_an_unreachable_channel_fraction_is_one_line_naming_the_model():
    with pytest.raises(RecipeError, match=r"lraspp-0.35:0.001: expected a MACs fraction within reach"):
        zoo_costs(["lraspp-0.35:0.001"], (32, 32), 4, rounds=1)
