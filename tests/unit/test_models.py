"""Zoo models build from plain layers, match in Keras and float TFLite, and load back safely."""

import json
import typing
import zipfile

import numpy as np
import pytest

from edgeseg._keras import keras, tf
from edgeseg.errors import ModelError
from edgeseg.models.copying import copy_model
from edgeseg.models.io import load_model, save_model
from edgeseg.models.zoo import BACKBONES, HEADS, build_model
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
    tflite = tf.lite.TFLiteConverter.from_keras_model(model).convert()
    image = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    keras_logits = model(image[None].astype(np.float32), training=False).numpy()[0]
    tflite_logits = TFLiteSegmenter(tflite).predict_raw(image)
    np.testing.assert_allclose(tflite_logits, keras_logits, atol=1e-4)


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
        load_model(path)
