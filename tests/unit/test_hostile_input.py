"""Hostile input gets one clear line naming the culprit, and costs no completed work."""

import errno
import os

import pytest

from edgeseg._keras import keras
from edgeseg.data import load_split
from edgeseg.errors import DataError, EdgesegError, ModelError
from edgeseg.models.io import load_model, save_model
from edgeseg.recipe import parse_data, parse_recipe
from tests.helpers import make_split, tiny_recipe_dict


def lambda_segmenter():
    image = keras.Input((32, 32, 3))
    scaled = keras.layers.Lambda(lambda x: x / 255.0)(image)
    return keras.Model(image, keras.layers.Conv2D(4, 1)(scaled))


def nested_lambda_segmenter():
    """A segmenter whose Lambda hides inside a nested model."""
    image = keras.Input((32, 32, 3))
    inner = keras.Model(image, keras.layers.Lambda(lambda x: x / 255.0, name="hidden")(image), name="inner")
    outer_image = keras.Input((32, 32, 3))
    return keras.Model(outer_image, keras.layers.Conv2D(4, 1)(inner(outer_image)))


def escaped_h5(path):
    """A legacy .h5 whose config spells the Lambda class with a JSON escape, which a text pattern misses."""
    import h5py

    lambda_segmenter().save(path)
    with h5py.File(path, "r+") as file:
        config = file.attrs["model_config"]
        config = config.decode() if isinstance(config, bytes) else config
        file.attrs["model_config"] = config.replace('"class_name": "Lambda"', '"class_name": "\\u004cambda"')
    assert "Lambda" not in file_config(path)
    return path


def file_config(path) -> str:
    import h5py

    with h5py.File(path, "r") as file:
        config = file.attrs["model_config"]
    return config.decode() if isinstance(config, bytes) else config


@pytest.mark.parametrize(
    ("name", "build"),
    [
        ("lambda.keras", lambda path: lambda_segmenter().save(path)),
        ("lambda.h5", lambda path: lambda_segmenter().save(path)),
        ("escaped.h5", escaped_h5),
        ("nested.keras", lambda path: nested_lambda_segmenter().save(path)),
        ("nested.h5", lambda path: nested_lambda_segmenter().save(path)),
        ("saved_model", lambda path: lambda_segmenter().save(path, save_format="tf")),
    ],
)
def test_every_way_a_lambda_layer_comes_in_is_refused_unless_trusted(tmp_path, name, build):
    path = tmp_path / name
    build(path)
    with pytest.raises(ModelError, match=rf"{name}: contains Lambda layers.*trust_model_code: true"):
        load_model(path)
    assert load_model(path, trust_model_code=True).output_shape == (None, 32, 32, 4)


@pytest.mark.parametrize("command", ["eval", "profile"])
def test_commands_refuse_a_lambda_file_unless_told_to_trust_it(tmp_path, capsys, command):
    from edgeseg.cli import main

    path = escaped_h5(tmp_path / "escaped.h5")
    arguments = [command, str(path)] + (["--data", "synthetic"] if command == "eval" else [])
    assert main(arguments) == 2
    assert "contains Lambda layers" in capsys.readouterr().err
    assert main([*arguments, "--trust_model_code"]) == 0


def test_a_model_without_lambda_layers_loads_without_trust(tmp_path, tiny_model):
    assert load_model(save_model(tiny_model, tmp_path / "plain.keras")).count_params() == tiny_model.count_params()


def test_trust_model_code_is_a_recipe_option(tmp_path):
    path = tmp_path / "teacher.keras"
    path.write_bytes(b"placeholder")
    recipe = parse_recipe(
        tiny_recipe_dict(teacher={"path": str(path), "trust_model_code": True}, stages=[{"distill": {}}, {"quantize": {}}])
    )
    assert recipe.teacher.trust_model_code is True


def test_a_symlink_loop_among_images_is_named(tmp_path):
    root = tmp_path / "ds"
    make_split(root, "train", ["a", "b"])
    loop = root / "train" / "images" / "loop.png"
    os.symlink(loop, loop)
    data = parse_data({"format": "folder", "root": str(root), "classes": ["x", "y", "z"], "input_size": [32, 32]})
    with pytest.raises(DataError, match=r"loop\.png: a broken or looping symbolic link"):
        load_split(data, "train", seed=0)


def test_a_looping_images_folder_is_named(tmp_path):
    root = tmp_path / "ds"
    make_split(root, "train", ["a"])
    images = root / "val" / "images"
    images.parent.mkdir(parents=True)
    os.symlink(images, images)
    data = parse_data({"format": "folder", "root": str(root), "classes": ["x", "y", "z"], "input_size": [32, 32]})
    with pytest.raises(DataError, match=r"val/images"):
        load_split(data, "val", seed=0)


def test_a_read_only_run_folder_is_one_clear_error(tmp_path, monkeypatch):
    import edgeseg.pipeline as pipeline

    def read_only(path, text):
        raise OSError(errno.EROFS, "Read-only file system", str(path))

    monkeypatch.setattr(pipeline, "write_text_atomic", read_only)
    recipe = parse_recipe(tiny_recipe_dict(data={**tiny_recipe_dict()["data"], "num_train": 8, "num_val": 4}))
    with pytest.raises(EdgesegError, match=r"recipe\.yaml: cannot write the run folder: Read-only file system"):
        pipeline.run(recipe, runs_dir=tmp_path / "runs")
