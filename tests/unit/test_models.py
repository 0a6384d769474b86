"""Zoo models build from plain layers, match in Keras and float TFLite, and load back safely."""

import json
import typing
import zipfile

import numpy as np
import pytest

from edgeseg._keras import keras, tf
from edgeseg.errors import ModelError
from edgeseg.models.copying import copy_model
from edgeseg.models.imagenet import APPLICATIONS, BACKBONE_LAYER_PREFIXES
from edgeseg.models.io import check_segmentation_model, load_model, save_model
from edgeseg.models.zoo import BACKBONES, HEADS, build_model
from edgeseg.quantization.converters import convert_float
from edgeseg.recipe import Arch, Backbone, ModelSpec
from edgeseg.tflite import TFLiteSegmenter
from tests.helpers import weights_equal

ZOO = [(arch, backbone) for arch in HEADS for backbone in BACKBONES]


def test_zoo_names_match_the_recipe_schema():
    assert set(typing.get_args(Arch)) == set(HEADS)
    assert set(typing.get_args(Backbone)) == set(BACKBONES)


@pytest.mark.parametrize("arch,backbone", ZOO)
@pytest.mark.parametrize("output_stride", [8, 16])
def test_zoo_model_maps_pixels_to_logits_with_real_layers_only(arch, backbone, output_stride):
    model = build_model(ModelSpec(arch=arch, backbone=backbone, alpha=0.35, output_stride=output_stride), (64, 64), 4)
    assert model.input_shape == (None, 64, 64, 3) and model.output_shape == (None, 64, 64, 4)
    banned = {"Lambda", "TFOpLambda", "SlicingOpLambda"}
    assert not banned & {type(layer).__name__ for layer in model.layers}


@pytest.mark.parametrize("arch,backbone", ZOO)
def test_keras_and_float_tflite_agree(arch, backbone):
    model = build_model(ModelSpec(arch=arch, backbone=backbone, alpha=0.35), (32, 32), 4)
    tflite = convert_float(model)
    image = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    keras_logits = model(image[None].astype(np.float32), training=False).numpy()[0]
    tflite_logits = TFLiteSegmenter(tflite).predict_raw(image)
    np.testing.assert_allclose(tflite_logits, keras_logits, atol=1e-4)


MATRIX = [(arch, backbone, False) for arch, backbone in ZOO] + [
    (arch, backbone, True) for arch, backbone in ZOO if backbone.startswith("mobilenet_v3")
]


@pytest.mark.parametrize(
    "arch,backbone,minimalistic",
    [
        # One model (95 s) in .ci/run's `ci` tier, the rest with `-m slow`.
        pytest.param(*entry, marks=pytest.mark.ci if entry == ("lraspp", "mobilenet_v3_small", False) else pytest.mark.slow)
        for entry in MATRIX
    ],
)
def test_zoo_model_trains_survives_tfmot_and_converts_to_full_int8(arch, backbone, minimalistic):
    """The zoo's contract, model by model: one training step; prune, cluster and QAT wrappers on
    every layer that has weights, stripped back to the same weights; a full-int8 file of builtins,
    after PTQ and after QAT. (QAT of LR-ASPP MobileNetV2 is also checked against the QAT model, in
    test_quantization.py.)"""
    from edgeseg._keras import tfmot
    from edgeseg.quantization.aware import quantize_aware
    from edgeseg.quantization.converters import EXACT_PIXEL_INPUT, convert_int8

    model = build_model(ModelSpec(arch=arch, backbone=backbone, alpha=0.5, minimalistic=minimalistic), (64, 64), 4)
    images = np.random.default_rng(0).integers(0, 256, (8, 64, 64, 3), dtype=np.uint8)
    labels = np.random.default_rng(1).integers(0, 4, (8, 64, 64))
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.train_on_batch(images.astype(np.float32), labels)
    weighted = {layer.name for layer in model.layers if isinstance(layer, (keras.layers.Conv2D, keras.layers.DepthwiseConv2D))}
    pruned = copy_model(model, lambda layer: tfmot.sparsity.keras.prune_low_magnitude(layer) if layer.name in weighted else layer)
    assert weights_equal(model.get_weights(), tfmot.sparsity.keras.strip_pruning(pruned).get_weights())
    clusterable = {name for name in weighted if type(model.get_layer(name)) is keras.layers.Conv2D}
    clustered = copy_model(
        model,
        lambda layer: (
            tfmot.clustering.keras.cluster_weights(
                layer, number_of_clusters=4, cluster_centroids_init=tfmot.clustering.keras.CentroidInitialization.LINEAR
            )
            if layer.name in clusterable
            else layer
        ),
    )
    stripped = tfmot.clustering.keras.strip_clustering(clustered)
    assert all(len(np.unique(stripped.get_layer(name).kernel.numpy())) <= 4 for name in clusterable)
    for candidate in (model, quantize_aware(model, calibration=images)):
        segmenter = TFLiteSegmenter(convert_int8(candidate, images))
        assert segmenter.float_ops() == [] and segmenter.input_quantization == EXACT_PIXEL_INPUT


def test_copy_model_shares_no_weights(tiny_model):
    copied = copy_model(tiny_model)
    before = tiny_model.get_weights()
    for variable in copied.trainable_variables:
        variable.assign(tf.zeros_like(variable))
    assert weights_equal(before, tiny_model.get_weights())
    image = np.full((1, 32, 32, 3), 128, np.float32)
    assert not np.allclose(copied(image), tiny_model(image))


def test_saved_model_loads_back_identically(tiny_model, tmp_path):
    path = save_model(tiny_model, tmp_path / "model.keras")
    loaded = load_model(path)
    image = np.random.default_rng(1).uniform(0, 255, (1, 32, 32, 3)).astype(np.float32)
    np.testing.assert_allclose(loaded(image), tiny_model(image), atol=1e-6)
    assert not list(tmp_path.glob(".*partial*")), "atomic save left its temporary file"


def test_a_file_that_is_not_a_model_is_refused_with_its_path(tmp_path):
    bogus = tmp_path / "notes.keras"
    bogus.write_text("not a model")
    with pytest.raises(ModelError, match=r"notes\.keras: not a \.keras archive"):
        load_model(bogus)
    other = tmp_path / "weights.h5"
    other.write_bytes(b"\x00" * 64)
    with pytest.raises(ModelError, match=r"weights\.h5: not a loadable Keras model"):
        load_model(other)


def test_a_keras3_file_is_refused_with_what_to_do(tmp_path):
    path = tmp_path / "k3.keras"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("metadata.json", json.dumps({"keras_version": "3.15.1"}))
        archive.writestr("config.json", "{}")
    with pytest.raises(ModelError, match=r"k3\.keras: saved by Keras 3\.15\.1.*tf_keras"):
        load_model(path)


def test_a_model_that_is_not_segmentation_is_refused(tmp_path):
    classifier = keras.Sequential([keras.Input((32, 32, 3)), keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(4)])
    path = save_model(classifier, tmp_path / "classifier.keras")
    with pytest.raises(ModelError, match=r"classifier\.keras: expected input \[N, H, W, 3\] and logits \[N, H, W, C\]"):
        check_segmentation_model(load_model(path), str(path))  # what eval and a recipe's model path do


def applications_weights_file(backbone: str, folder, alpha: float = 0.75, seed: int = 0):
    """keras.applications' backbone with random weights saved as a file: the stand-in, on a machine
    without a network, for the ImageNet file Keras downloads; returns the model and the file."""
    source = APPLICATIONS[backbone](input_shape=(224, 224, 3), alpha=alpha, include_top=False, weights=None)
    rng = np.random.default_rng(seed)
    for weight in source.weights:
        weight.assign(rng.normal(size=weight.shape).astype(np.float32))
    path = folder / f"{backbone}_no_top.h5"
    source.save_weights(path)
    return source, path


@pytest.mark.parametrize("backbone", list(BACKBONES))
def test_imagenet_weights_map_onto_every_backbone_layer(backbone, tmp_path):
    source, path = applications_weights_file(backbone, tmp_path)
    model = build_model(ModelSpec(arch="lraspp", backbone=backbone, alpha=0.75, backbone_weights=path), (64, 64), 4)
    ours = [layer for layer in model.layers if layer.weights and layer.name.startswith(BACKBONE_LAYER_PREFIXES)]
    theirs = [layer for layer in source.layers if layer.weights][: len(ours)]
    assert len(ours) > 40 and all(weights_equal(a.get_weights(), b.get_weights()) for a, b in zip(ours, theirs))


def test_imagenet_weights_of_another_backbone_are_refused_naming_the_file(tmp_path):
    _, path = applications_weights_file("mobilenet_v2", tmp_path)
    with pytest.raises(ModelError, match=r"backbone_weights: .*Received: backbone='mobilenet_v3_small'.*no_top.h5"):
        build_model(ModelSpec(arch="lraspp", backbone="mobilenet_v3_small", alpha=0.75, backbone_weights=path), (64, 64), 4)
