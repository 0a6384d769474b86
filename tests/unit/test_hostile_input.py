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


@pytest.mark.parametrize("suffix", [".keras", ".h5"])
def test_lambda_layers_are_refused_unless_trusted(tmp_path, suffix):
    path = tmp_path / f"lambda{suffix}"
    lambda_segmenter().save(path)
    with pytest.raises(ModelError, match=rf"lambda\{suffix}: contains Lambda layers.*trust_model_code: true"):
        load_model(path)
    assert load_model(path, trust_model_code=True).output_shape == (None, 32, 32, 4)


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
