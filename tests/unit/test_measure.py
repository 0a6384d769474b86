"""What untrained zoo models cost, measured side by side (edgeseg.measure): the costs tool's figures."""

import subprocess
import sys

import numpy as np
import pytest

from edgeseg.errors import RecipeError
from edgeseg.measure import costs_markdown, zoo_costs
from tests.helpers import REPO


def test_zoo_costs_measure_each_named_model_and_channel_removal_makes_it_cheaper():
    costs = zoo_costs(["minimal-0.35-os32", "minimal-0.35-os32:0.5"], (32, 32), 4, rounds=2)
    full, pruned = costs.values()
    assert pruned["macs"] <= 0.5 * full["macs"] and pruned["params"] < full["params"] and pruned["bytes"] < full["bytes"]
    assert all(cost["latency_ms"]["1"] > 0 and cost["latency_ms"]["2"] > 0 for cost in costs.values())
    table = costs_markdown(costs).splitlines()
    assert len(table) == 4 and table[2].startswith("| minimal-0.35-os32 |") and "(1.00x)" in table[2]


def test_head_resolution_times_each_model_also_without_its_final_resize():
    costs = zoo_costs(["lraspp-0.35-os32"], (32, 32), 4, rounds=1, head_resolution=True)
    assert list(costs) == ["lraspp-0.35-os32", "lraspp-0.35-os32@head"]
    full, head = costs.values()
    assert head["macs"] == full["macs"], "the resize has no MACs: the difference is its latency alone"
    assert head["params"] == full["params"] and all(head["latency_ms"][threads] > 0 for threads in ("1", "2"))


def test_without_final_resize_ends_at_the_heads_resolution_and_refuses_a_model_not_ending_in_a_resize():
    from edgeseg._keras import keras
    from edgeseg.measure import untrained_model, without_final_resize
    from edgeseg.recipe import model_from_name

    zoo_model = untrained_model(model_from_name("lraspp-0.35-os32"), (64, 64), 4)
    assert without_final_resize(zoo_model).output_shape == (None, 8, 8, 4), "the stride-8 skip's resolution"
    inputs = keras.Input((8, 8, 3))
    model = keras.Model(inputs, keras.layers.Conv2D(2, 1)(inputs))
    with pytest.raises(ValueError, match="ending in a resize layer, received one ending in Conv2D"):
        without_final_resize(model)


def test_a_model_may_have_its_own_input_size_and_a_bad_one_is_one_line_naming_the_model():
    costs = zoo_costs(["minimal-0.35-os32", "minimal-0.35-os32@64x64", "minimal-0.35-os32:0.5@64x64"], (32, 32), 4, rounds=1)
    small, large, large_pruned = costs.values()
    assert large["macs"] == pytest.approx(4 * small["macs"], rel=0.05), "4x the pixels, about 4x the MACs"
    assert large["params"] == small["params"] and large_pruned["macs"] <= 0.5 * large["macs"]
    for size in ("64", "64x", "0x64", "axb"):
        with pytest.raises(RecipeError, match=rf"minimal-0.35-os32@{size}: expected an input size HxW after '@'"):
            zoo_costs([f"minimal-0.35-os32@{size}"], (32, 32), 4, rounds=1)


def test_an_unreachable_channel_fraction_is_one_line_naming_the_model():
    with pytest.raises(RecipeError, match=r"lraspp-0.35:0.001: expected a MACs fraction within reach"):
        zoo_costs(["lraspp-0.35:0.001"], (32, 32), 4, rounds=1)


def test_a_model_compressed_like_training_has_the_zeros_and_values_tf_mot_leaves_and_a_smaller_gzip():
    from edgeseg.files import content_sizes
    from edgeseg.kernels import kernels_of
    from edgeseg.layer_selection import select_layers
    from edgeseg.measure import compressed_like_training, random_calibration, untrained_model
    from edgeseg.quantization.converters import convert_int8
    from edgeseg.recipe import LayerSelection, ModelSpec

    model = untrained_model(ModelSpec(arch="minimal", alpha=0.35, output_stride=32), (32, 32), 4)
    before = [weights.copy() for weights in model.get_weights()]
    selected = select_layers(model, 4, LayerSelection())
    assert len(selected) >= 3
    compressed = compressed_like_training(model, 4, 0.75, 8, LayerSelection(), LayerSelection())
    assert all((a == b).all() for a, b in zip(before, model.get_weights())), "the input model is left alone"
    for name, kernel in kernels_of(compressed, selected).items():
        assert (kernel == 0).mean() == pytest.approx(0.75, abs=0.01), name
        assert len(set(kernel[kernel != 0].tolist())) <= 8, name
    untouched = [layer.name for layer in model.layers if layer.name not in selected]
    assert all((a == b).all() for a, b in zip(kernels_of(model, untouched).values(), kernels_of(compressed, untouched).values()))
    calibration = random_calibration((32, 32), 0, 4)
    dense, sparse = (content_sizes(convert_int8(m, calibration)) for m in (model, compressed))
    assert sparse["gzip_bytes"] < 0.7 * dense["gzip_bytes"] and sparse["bytes"] == pytest.approx(dense["bytes"], rel=0.01)


@pytest.mark.parametrize("fill", [0.0, 0.25], ids=["all zeros", "one value"])
def test_a_kernel_with_fewer_values_than_clusters_is_left_as_it_is(fill):
    from edgeseg.kernels import kernels_of
    from edgeseg.layer_selection import select_layers
    from edgeseg.measure import compressed_like_training, untrained_model
    from edgeseg.recipe import LayerSelection, ModelSpec

    model = untrained_model(ModelSpec(arch="minimal", alpha=0.35, output_stride=32), (32, 32), 4)
    selected = select_layers(model, 4, LayerSelection())
    flat = model.get_layer(selected[0])
    flat.kernel.assign(np.full(flat.kernel.shape, fill, dtype="float32"))
    compressed = compressed_like_training(model, 4, 0.0, 8, LayerSelection(), LayerSelection())
    assert (kernels_of(compressed, [flat.name])[flat.name] == fill).all()
    assert len(set(kernels_of(compressed, [selected[1]])[selected[1]].ravel().tolist())) <= 8, "the others still clustered"


def test_the_cost_tool_names_a_bad_model_in_one_line_and_exits_2():
    result = subprocess.run(
        [sys.executable, str(REPO / "tools/measure_costs.py"), "lraspp-0.35@144"], capture_output=True, text=True
    )
    assert result.returncode == 2
    assert result.stderr.splitlines()[-1].endswith(
        "lraspp-0.35@144: expected an input size HxW after '@', e.g. 144x192. Received: '144'"
    )
    assert "Traceback" not in result.stderr
