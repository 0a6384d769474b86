"""`profile`: MACs per layer counted by hand on a tiny model; the CLI on a .keras and a .tflite."""

from edgeseg._keras import keras
from edgeseg.cli import main
from edgeseg.models.io import save_model
from edgeseg.profile import profile_model


def tiny_convolutions():
    image = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(4, 3, padding="same", use_bias=False, name="full")(image)
    x = keras.layers.DepthwiseConv2D(3, strides=2, padding="same", name="depthwise")(x)
    x = keras.layers.Conv2D(6, 1, groups=2, name="grouped")(x)
    x = keras.layers.ReLU(name="relu")(x)
    return keras.Model(image, keras.layers.UpSampling2D(2, name="up")(x), name="tiny")


def test_macs_are_counted_per_layer_and_sorted_costliest_first():
    found = profile_model(tiny_convolutions())
    macs = {row["layer"]: row["macs"] for row in found["layers"]}
    assert macs == {"full": 8 * 8 * 4 * (3 * 3 * 3), "depthwise": 4 * 4 * 4 * (3 * 3), "grouped": 4 * 4 * 6 * 2}
    assert [row["layer"] for row in found["layers"]] == ["full", "depthwise", "grouped"]
    assert found["macs"] == sum(macs.values()) and found["params"] == 108 + (36 + 4) + (12 + 6)


def test_profile_command_lists_keras_layers_and_tflite_ops(tiny_export, tmp_path, capsys):
    assert main(["profile", str(save_model(tiny_convolutions(), tmp_path / "tiny.keras")), "--top", "2"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("tiny: 166 params, 0.0 M MACs") and lines[2].startswith("full") and len(lines) == 4
    assert main(["profile", str(tiny_export / "model.tflite")]) == 0
    out = capsys.readouterr().out
    assert "bytes, input [32, 32, 3], median latency 1 thread(s)" in out and "CONV_2D" in out and "int8" in out
