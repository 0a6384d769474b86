"""Tiny recipes, models and contexts shared by the tests: 32-64 px, 4 classes, seeded."""

import pytest

from tests.helpers import tiny_recipe_dict


@pytest.fixture
def tiny_context(tmp_path):
    """A StageContext over 32 px synthetic data, with a stage folder in tmp_path."""
    from edgeseg.data import load_split
    from edgeseg.recipe import parse_recipe
    from edgeseg.stages.base import StageContext

    recipe = parse_recipe(tiny_recipe_dict())
    data = recipe.data
    stage_dir = tmp_path / "01-stage"
    stage_dir.mkdir()
    return StageContext(
        load_split(data, "train", 0), load_split(data, "val", 0), list(data.classes), data.batch_size,
        data.augment, 0, tmp_path, recipe, stage_dir,
    )


@pytest.fixture
def tiny_model():
    """An untrained LR-ASPP MobileNetV2 a0.35 at 32 px, 4 classes."""
    from edgeseg.models.zoo import build_model
    from edgeseg.recipe import ModelSpec

    return build_model(ModelSpec(arch="lraspp", alpha=0.35), (32, 32), 4, seed=0)


@pytest.fixture(scope="session")
def tiny_export(tmp_path_factory):
    """The run folder of a 32 px model trained one epoch and exported: model.tflite, edgeseg.json, labels.txt."""
    import edgeseg
    from edgeseg.recipe import parse_recipe

    recipe = tiny_recipe_dict(stages=[{"train": {"epochs": 1}}, {"quantize": {"calibration_images": 16}}, {"export": {}}])
    del recipe["student"]
    return edgeseg.run(parse_recipe(recipe), runs_dir=tmp_path_factory.mktemp("export")).run_dir
