"""Channel pruning: groups read from the graph, removal that computes what zeroing the removed
channels computes (every zoo model, tiny models of each group kind, unknown layers), importance,
and allocation to a MACs or parameter target."""

import logging

import numpy as np
import pytest

from edgeseg._keras import keras, tfmot
from edgeseg.channel_pruning.allocation import allocate, plan_summary, uniform_plan
from edgeseg.channel_pruning.groups import Member, find_groups
from edgeseg.channel_pruning.importance import channel_importance
from edgeseg.channel_pruning.removal import remove_channels
from edgeseg.losses import masked_cross_entropy
from edgeseg.models.backbones import activation, hard_sigmoid
from edgeseg.models.copying import copy_model
from edgeseg.models.zoo import build_model
from edgeseg.profile import profile_model
from edgeseg.quantization.converters import calibration_images, convert_int8
from edgeseg.recipe import ModelSpec
from tests.helpers import weights_equal

layers = keras.layers

ZOO = [
    ("lraspp", "mobilenet_v2", False),
    ("deeplabv3plus", "mobilenet_v2", False),
    ("lraspp", "mobilenet_v3_small", False),
    ("minimal", "mobilenet_v2", False),
    ("lraspp", "mobilenet_v3_small", True),
    ("lraspp", "mobilenet_v3_large", False),
    ("lraspp", "mobilenet_v3_large", True),
    ("deeplabv3plus", "mobilenet_v3_small", False),
    ("deeplabv3plus", "mobilenet_v3_small", True),
    ("deeplabv3plus", "mobilenet_v3_large", False),
    ("deeplabv3plus", "mobilenet_v3_large", True),
]
DEFAULT_ZOO = ZOO[:4]


def zoo_matrix(default):
    return [entry if entry in default else pytest.param(*entry, marks=pytest.mark.slow) for entry in ZOO]


def zoo_model(arch: str, backbone: str, minimalistic: bool, size: int = 64):
    """An alpha 0.35 zoo model whose BatchNorm layers hold random statistics, so that every channel matters."""
    model = build_model(ModelSpec(arch=arch, backbone=backbone, alpha=0.35, minimalistic=minimalistic), (size, size), 4)
    randomize_batchnorm(model)
    return model


def randomize_batchnorm(model, seed: int = 0):
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, layers.BatchNormalization):
            gamma, beta, mean, variance = layer.get_weights()
            layer.set_weights(
                [
                    rng.uniform(0.5, 1.5, gamma.shape),
                    rng.normal(0, 0.1, beta.shape),
                    rng.normal(0, 0.1, mean.shape),
                    rng.uniform(0.5, 1.5, variance.shape),
                ]
            )


def random_importance(groups, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    return {group.id: rng.random(group.size) for group in groups if group.pinned is None}


def images(count: int = 2, size: int = 64, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0, 255, (count, size, size, 3)).astype(np.float32)


def zeroed_copy(model, groups, kept):
    """A copy of `model` whose removed channels are zero where they start: the producers' filters and
    biases, the BatchNorm scales and shifts and the depthwise kernels of their groups. Every activation
    here maps 0 to 0, so a removed channel reaches its consumers as zeros."""
    copied = copy_model(model)
    for group in groups:
        if group.id not in kept:
            continue
        gone = np.setdiff1d(np.arange(group.size), kept[group.id])
        for member in group.members:
            layer = copied.get_layer(member.layer)
            weights = layer.get_weights()
            channels = member.offset + gone
            if member.role == "produces" and isinstance(layer, layers.Conv2DTranspose):
                weights[0][..., channels, :] = 0
            elif member.role == "produces":
                weights[0][..., channels] = 0
            elif member.role == "passes" and isinstance(layer, layers.BatchNormalization):
                weights[0][channels] = weights[1][channels] = 0
            elif member.role == "passes" and isinstance(layer, layers.DepthwiseConv2D):
                weights[0][:, :, channels] = 0
            else:
                continue
            if len(weights) > 1 and not isinstance(layer, layers.BatchNormalization):
                weights[1][channels] = 0
            layer.set_weights(weights)
    return copied


def assert_same_function(model, removed, zeroed, inputs):
    expected = zeroed(inputs).numpy()
    np.testing.assert_allclose(removed(inputs).numpy(), expected, atol=1e-4 * max(1.0, float(np.abs(expected).max())))
    assert [(layer.name, type(layer)) for layer in removed.layers] == [(layer.name, type(layer)) for layer in model.layers]


def assert_wraps_in_tfmot(model):
    conv = next(layer.name for layer in model.layers if type(layer) is layers.Conv2D)
    wrapped = copy_model(model, lambda layer: tfmot.sparsity.keras.prune_low_magnitude(layer) if layer.name == conv else layer)
    assert wrapped(images(1, model.input_shape[1])).shape == (1, *model.output_shape[1:])


def group_producing(groups, layer_name: str):
    return next(group for group in groups if Member(layer_name, "produces") in group.members)


@pytest.fixture(scope="module")
def lraspp():
    """LR-ASPP MobileNetV2 a0.35 at 64 px and its groups, shared by the tests that only read them."""
    model = zoo_model("lraspp", "mobilenet_v2", False)
    return model, find_groups(model)


@pytest.mark.parametrize("arch,backbone,minimalistic", zoo_matrix(DEFAULT_ZOO))
def test_removal_computes_what_zeroing_the_removed_channels_computes_on_every_zoo_model(arch, backbone, minimalistic):
    model = zoo_model(arch, backbone, minimalistic)
    original = [weights.copy() for weights in model.get_weights()]
    groups = find_groups(model)
    assert [group.pinned is not None for group in groups].count(True) == 2, "only the image and the logits are pinned"
    kept = uniform_plan(groups, random_importance(groups), 0.5, round_to=4, min_channels=4)
    assert all(len(kept[group.id]) < group.size for group in groups if group.pinned is None)

    removed = remove_channels(model, groups, kept)

    assert_same_function(model, removed, zeroed_copy(model, groups, kept), images())
    assert weights_equal(original, model.get_weights()), "the input model changed"
    before, after, summary = profile_model(model), profile_model(removed), plan_summary(model, groups, kept)
    assert summary["macs"] == {"before": before["macs"], "after": after["macs"]} and after["macs"] < 0.5 * before["macs"]
    assert summary["params"] == {"before": before["params"], "after": after["params"]} and after["params"] < before["params"]


@pytest.mark.parametrize("arch,backbone,minimalistic", zoo_matrix(default=()))
def test_a_zoo_model_pruned_to_half_its_macs_is_a_smaller_int8_file_and_wraps_in_tfmot(arch, backbone, minimalistic):
    model = zoo_model(arch, backbone, minimalistic)
    groups = find_groups(model)
    removed = remove_channels(model, groups, allocate(model, groups, random_importance(groups), ("macs", 0.5)))
    assert profile_model(removed)["macs"] <= 0.5 * profile_model(model)["macs"]
    calibration = calibration_images(images(4), 4, seed=0)
    assert len(convert_int8(removed, calibration)) < 0.75 * len(convert_int8(model, calibration))
    assert_wraps_in_tfmot(removed)


def test_a_zoo_model_pruned_to_half_its_macs_has_at_most_half_and_wraps_in_tfmot(lraspp):
    model, groups = lraspp
    removed = remove_channels(model, groups, allocate(model, groups, random_importance(groups), ("macs", 0.5)))
    assert profile_model(removed)["macs"] <= 0.5 * profile_model(model)["macs"]
    assert_wraps_in_tfmot(removed)


def test_a_pruned_model_is_a_smaller_int8_file():
    """On a tiny model, since converting a zoo model takes a minute (the zoo's files: `-m slow`)."""
    keras.utils.set_random_seed(0)
    model, _ = squeeze_excite()
    groups = find_groups(model)
    removed = remove_channels(model, groups, uniform_plan(groups, random_importance(groups), 0.5))
    calibration = calibration_images(images(4, 16), 4, seed=0)
    assert len(convert_int8(removed, calibration)) < len(convert_int8(model, calibration))


def residual():
    image = keras.Input((16, 16, 3), name="image")
    x = layers.Conv2D(16, 3, padding="same", name="stem")(image)
    x = layers.BatchNormalization(name="stem_bn")(x)
    x = layers.ReLU(name="stem_relu")(x)
    branch = layers.Conv2D(16, 3, padding="same", name="branch")(x)
    branch = layers.BatchNormalization(name="branch_bn")(branch)
    x = layers.Add(name="add")([x, branch])
    return keras.Model(image, layers.Conv2D(4, 1, name="logits")(x)), [{"stem", "branch"}]


def gated():
    """LR-ASPP's gate, and a one-channel map broadcast over the channels, which stays a group of its own."""
    image = keras.Input((16, 16, 3), name="image")
    x = layers.Conv2D(16, 3, padding="same", name="features")(image)
    x = layers.ReLU(name="features_relu")(x)
    gate = layers.GlobalAveragePooling2D(keepdims=True, name="pool")(x)
    gate = layers.Conv2D(16, 1, name="gate_conv")(gate)
    x = layers.Multiply(name="gate")([x, layers.Activation("sigmoid", name="sigmoid")(gate)])
    scale = layers.Conv2D(1, 1, name="scale")(x)
    x = layers.Multiply(name="broadcast")([x, scale])
    return keras.Model(image, layers.Conv2D(4, 1, name="logits")(x)), [{"features", "gate_conv"}, {"scale"}]


def concatenated():
    image = keras.Input((16, 16, 3), name="image")
    left = layers.ReLU(name="left_relu")(layers.Conv2D(16, 3, padding="same", name="left")(image))
    right = layers.ReLU(name="right_relu")(layers.Conv2D(24, 3, padding="same", name="right")(image))
    x = layers.Concatenate(name="concat")([left, right])
    x = layers.BatchNormalization(name="concat_bn")(x)
    x = layers.DepthwiseConv2D(3, padding="same", name="concat_dw")(x)
    return keras.Model(image, layers.Conv2D(4, 1, name="logits")(x)), [{"left"}, {"right"}]


def depthwise_chain():
    """Depthwise convolutions and the layers that pass channels through, one group from end to end."""
    image = keras.Input((16, 16, 3), name="image")
    x = layers.Conv2D(16, 1, name="expand")(image)
    x = layers.BatchNormalization(name="expand_bn")(x)
    x = layers.ReLU(6.0, name="expand_relu")(x)
    x = layers.DepthwiseConv2D(3, padding="same", name="dw1")(x)
    x = layers.ZeroPadding2D(1, name="pad")(x)
    x = layers.DepthwiseConv2D(3, strides=2, use_bias=False, name="dw2")(x)
    x = layers.MaxPooling2D(name="max_pool")(x)
    x = layers.AveragePooling2D(1, name="average_pool")(x)
    x = layers.Dropout(0.5, name="dropout")(x)
    x = layers.UpSampling2D(4, interpolation="bilinear", name="upsample")(x)
    x = layers.Resizing(18, 18, name="resize")(x)
    x = layers.Cropping2D(1, name="crop")(x)
    x = layers.Rescaling(2.0, name="rescale")(x)
    return keras.Model(image, layers.Conv2D(4, 1, name="logits")(x)), [{"expand"}]


def squeeze_excite():
    """MobileNetV3's squeeze-excite and hard-swish, from the backbones' own helpers."""
    image = keras.Input((16, 16, 3), name="image")
    x = layers.Conv2D(24, 3, padding="same", name="expand")(image)
    x = activation(x, "expand", "hard_swish")
    gate = layers.GlobalAveragePooling2D(keepdims=True, name="se_pool")(x)
    gate = layers.ReLU(name="se_relu")(layers.Conv2D(16, 1, name="se_reduce")(gate))
    gate = hard_sigmoid(layers.Conv2D(24, 1, name="se_expand")(gate), "se_gate")
    x = layers.Multiply(name="se_scale")([x, gate])
    return keras.Model(image, layers.Conv2D(4, 1, name="logits")(x)), [{"expand", "se_expand"}, {"se_reduce"}]


def dense_and_transposed():
    """A transposed convolution (its kernel holds output channels before input ones) and dense layers."""
    image = keras.Input((16, 16, 3), name="image")
    x = layers.Conv2D(16, 3, strides=2, padding="same", name="down")(image)
    x = layers.Conv2DTranspose(24, 2, strides=2, name="up")(x)
    x = layers.BatchNormalization(name="up_bn")(x)
    x = layers.GlobalAveragePooling2D(name="pool")(x)
    x = layers.ReLU(name="hidden_relu")(layers.Dense(16, name="hidden")(x))
    return keras.Model(image, layers.Dense(4, name="logits")(x)), [{"down"}, {"up"}, {"hidden"}]


@pytest.mark.parametrize("build", [residual, gated, concatenated, depthwise_chain, squeeze_excite, dense_and_transposed])
def test_each_kind_of_group_is_found_and_removed_as_zeroing_it_computes(build):
    keras.utils.set_random_seed(0)
    model, expected_groups = build()
    randomize_batchnorm(model)
    groups = find_groups(model)
    producers = [{member.layer for member in group.members if member.role == "produces"} for group in groups]
    assert [found for found in producers if found - {"logits"}] == expected_groups
    assert [group.pinned is not None for group in groups] == [True] + [False] * len(expected_groups) + [True]
    rng = np.random.default_rng(0)
    kept = {
        group.id: np.sort(rng.choice(group.size, group.size // 2, replace=False))
        for group in groups
        if group.pinned is None and group.size > 1
    }

    removed = remove_channels(model, groups, kept)

    inputs = images(2, 16)
    assert_same_function(model, removed, zeroed_copy(model, groups, kept), inputs)
    assert profile_model(removed)["params"] < profile_model(model)["params"]


def test_a_consumer_of_a_concatenation_loses_the_input_slices_at_each_groups_offset():
    model, _ = concatenated()
    groups = find_groups(model)
    left, right = group_producing(groups, "left"), group_producing(groups, "right")
    assert {Member("logits", "consumes", 16), Member("concat_bn", "passes", 16)} <= set(right.members)
    kept = {left.id: np.array([1, 5, 6, 9, 15]), right.id: np.array([0, 2, 3, 23])}

    removed = remove_channels(model, groups, kept)

    rows = np.concatenate([kept[left.id], 16 + kept[right.id]])
    np.testing.assert_array_equal(
        removed.get_layer("logits").kernel.numpy(), model.get_layer("logits").kernel.numpy()[:, :, rows]
    )
    np.testing.assert_array_equal(
        removed.get_layer("concat_dw").depthwise_kernel.numpy(), model.get_layer("concat_dw").depthwise_kernel.numpy()[:, :, rows]
    )
    assert removed.get_layer("right").filters == 4 and removed.get_layer("concat_bn").gamma.shape == (9,)


class Doubling(layers.Layer):
    """A custom layer: edgeseg cannot know what it does to channels."""

    def call(self, inputs):
        return inputs * 2.0


def concatenation_added(x):
    halves = [layers.Conv2D(8, 1, name=name)(x) for name in ("left", "right")]
    return layers.Add(name="add")([x, layers.Concatenate(name="concat")(halves)])


def shared_relu(x):
    relu = layers.ReLU(name="shared")
    return relu(relu(x))


OBSTACLES = {
    "custom (Doubling)": lambda x: Doubling(name="custom")(x),
    "reshape (Reshape)": lambda x: layers.Reshape((16, 16, 16), name="reshape")(x),
    "grouped (Conv2D): a grouped convolution": lambda x: layers.Conv2D(16, 3, padding="same", groups=2, name="grouped")(x),
    "depthwise (DepthwiseConv2D): depth_multiplier is 2": lambda x: layers.DepthwiseConv2D(
        3, depth_multiplier=2, name="depthwise"
    )(x),
    "softmax (Activation): activation 'softmax'": lambda x: layers.Activation("softmax", name="softmax")(x),
    "per_channel (Rescaling): a per-channel scale": lambda x: layers.Rescaling([2.0] * 16, name="per_channel")(x),
    "add (Add): ties a concatenation to channels split differently": concatenation_added,
    "shared (ReLU): called 2 times": shared_relu,
    "nested (Sequential)": lambda x: keras.Sequential([layers.ReLU()], name="nested")(x),
    "lambda (Lambda)": lambda x: layers.Lambda(lambda tensor: tensor * 2.0, name="lambda")(x),
    "first (Conv2D): named in pinned_layers": lambda x: x,
}


@pytest.mark.parametrize("reason", OBSTACLES)
def test_a_layer_edgeseg_does_not_understand_pins_its_groups_and_the_rest_still_shrinks(reason, caplog):
    image = keras.Input((16, 16, 3), name="image")
    x = layers.Conv2D(16, 3, padding="same", name="first")(image)
    x = OBSTACLES[reason](x)
    x = layers.ReLU(name="free_relu")(layers.Conv2D(16, 1, name="free")(x))
    model = keras.Model(image, layers.Conv2D(4, 1, name="logits")(x))

    with caplog.at_level(logging.INFO, logger="edgeseg"):
        groups = find_groups(model, pinned_layers=["first"] if "pinned_layers" in reason else ())

    pinned, free = group_producing(groups, "first"), group_producing(groups, "free")
    assert reason in pinned.pinned and reason in caplog.text and free.pinned is None
    kept = {free.id: np.arange(0, 16, 2)}
    removed = remove_channels(model, groups, kept)
    assert_same_function(model, removed, zeroed_copy(model, groups, kept), images(2, 16))
    with pytest.raises(ValueError, match=rf"kept\[{pinned.id}\]: expected all 16 channels of a pinned group"):
        remove_channels(model, groups, {pinned.id: np.arange(8)})


def test_find_groups_refuses_a_model_it_cannot_read_and_a_pinned_layer_it_cannot_find():
    class Subclassed(keras.Model):
        def call(self, inputs):
            return inputs

    with pytest.raises(ValueError, match="model: expected a functional tf_keras model .*, received Subclassed"):
        find_groups(Subclassed())
    model, _ = residual()
    with pytest.raises(ValueError, match=r"pinned_layers: expected names of layers of .*, received \['stem_cnv'\]"):
        find_groups(model, pinned_layers=["stem", "stem_cnv"])


@pytest.mark.parametrize("kind,fraction", [("macs", 0.5), ("params", 0.6)])
def test_allocation_reaches_its_target_with_uneven_widths_in_multiples_of_round_to(lraspp, kind, fraction):
    model, groups = lraspp
    importance = channel_importance(model, groups, "l1")

    kept = allocate(model, groups, importance, (kind, fraction), round_to=8, min_channels=8)

    summary = plan_summary(model, groups, kept)
    assert fraction - 0.05 < summary[kind]["after"] / summary[kind]["before"] <= fraction
    shrunk = [group for group in groups if group.id in kept and len(kept[group.id]) < group.size]
    assert shrunk and all(len(kept[group.id]) % 8 == 0 and len(kept[group.id]) >= 8 for group in shrunk)
    assert len({round(len(kept[group.id]) / group.size, 2) for group in groups if group.id in kept}) > 3, "widths are uneven"
    coarse = allocate(model, groups, importance, (kind, fraction), round_to=16, min_channels=16)
    assert all(len(coarse[group.id]) % 16 == 0 for group in groups if group.id in coarse and len(coarse[group.id]) < group.size)
    assert plan_summary(model, groups, coarse)[kind]["after"] <= fraction * summary[kind]["before"]
    weighted = plan_summary(model, groups, allocate(model, groups, importance, (kind, fraction), cost_weighted=True))
    assert weighted[kind]["after"] <= fraction * weighted[kind]["before"]
    stem = group_producing(groups, "stem_conv").id
    without_stem = allocate(model, groups, {key: value for key, value in importance.items() if key != stem}, (kind, fraction))
    assert stem not in without_stem and plan_summary(model, groups, without_stem)["layers"][0]["after"] == 16


def test_a_uniform_plan_keeps_the_same_rounded_fraction_of_every_group(lraspp):
    model, groups = lraspp
    plan = uniform_plan(groups, random_importance(groups), 0.5, round_to=8)
    assert {group.size: len(plan[group.id]) for group in groups if group.id in plan} == {
        8: 8, 16: 8, 24: 16, 32: 16, 48: 24, 56: 32, 96: 48, 112: 56, 128: 64, 144: 72, 192: 96, 336: 168
    }  # fmt: skip
    summary = plan_summary(model, groups, plan)
    assert summary["layers"][0] == {"layer": "stem_conv", "type": "Conv2D", "before": 16, "after": 8}


def test_an_unreachable_target_or_a_wrong_one_is_refused_in_one_line(lraspp):
    model, groups = lraspp
    importance = random_importance(groups)
    with pytest.raises(ValueError, match=r"target: expected a macs fraction within reach, received 0.01; .* keeps 0\.\d+"):
        allocate(model, groups, importance, ("macs", 0.01))
    with pytest.raises(
        ValueError, match=r"target: expected \(macs or params, a fraction in \(0, 1\]\), received \('latency', 0.5\)"
    ):
        allocate(model, groups, importance, ("latency", 0.5))


def test_magnitude_scores_average_one_per_group_and_bn_scale_reads_the_batchnorm(lraspp):
    model, groups = lraspp
    for criterion in ("l1", "l2", "bn_scale"):
        scores = channel_importance(model, groups, criterion)
        assert set(scores) == {group.id for group in groups if group.pinned is None}
        np.testing.assert_allclose([values.mean() for values in scores.values()], 1.0, rtol=1e-6)
    stem = group_producing(groups, "stem_conv")
    gammas = [np.abs(model.get_layer(name).gamma.numpy()) for name in ("stem_bn", "block0_dw_bn")]
    expected = np.mean([gamma / gamma.mean() for gamma in gammas], axis=0)
    np.testing.assert_allclose(channel_importance(model, groups, "bn_scale")[stem.id], expected, rtol=1e-6)


def test_taylor_importance_runs_on_a_few_batches_leaves_the_model_unchanged_and_ranks_otherwise_than_l1(lraspp):
    model, groups = lraspp
    original = [weights.copy() for weights in model.get_weights()]
    rng = np.random.default_rng(0)
    batches = [(images(2, seed=seed), rng.integers(0, 4, (2, 64, 64)).astype(np.int32)) for seed in range(2)]

    taylor = channel_importance(
        model, groups, "taylor", batches, loss=lambda labels, logits: masked_cross_entropy(labels, logits, ignore_index=255)
    )

    l1 = channel_importance(model, groups, "l1")
    assert set(taylor) == set(l1) and all(np.all(np.isfinite(values)) and np.all(values >= 0) for values in taylor.values())
    assert sum(not np.array_equal(np.argsort(taylor[key]), np.argsort(l1[key])) for key in l1) > len(l1) // 2
    assert weights_equal(original, model.get_weights())
    with pytest.raises(ValueError, match="taylor importance: expected batches and a loss, received None"):
        channel_importance(model, groups, "taylor")
