"""Tiny recipes, models and contexts shared by the tests: 32-64 px, 4 classes, seeded."""

import pytest

from tests.helpers import tiny_recipe_dict


def _context(folder, recipe_dict):
    from edgeseg.data import load_split
    from edgeseg.recipe import parse_recipe
    from edgeseg.stages.base import StageContext

    recipe = parse_recipe(recipe_dict)
    data = recipe.data
    stage_dir = folder / "01-stage"
    stage_dir.mkdir()
    return StageContext(
        load_split(data, "train", 0),
        load_split(data, "val", 0),
        list(data.classes),
        data.batch_size,
        data.augment,
        0,
        folder,
        recipe,
        stage_dir,
    )


@pytest.fixture
def tiny_context(tmp_path):
    """A StageContext over 32 px synthetic data, with a stage folder in tmp_path."""
    return _context(tmp_path, tiny_recipe_dict())


def _learnable_recipe() -> dict:
    # At 32 px and 64 images a few epochs leave every pixel background; this learns in 6 epochs.
    recipe = tiny_recipe_dict()
    recipe["data"].update(input_size=[64, 64], num_train=128)
    return recipe


@pytest.fixture
def learnable_context(tmp_path):
    """A StageContext over 64 px synthetic data (128 train, 16 val images), stage folder in tmp_path."""
    return _context(tmp_path, _learnable_recipe())


@pytest.fixture(scope="session")
def trained_student_path(tmp_path_factory):
    """An LR-ASPP MobileNetV2 a0.35 trained 6 epochs on `learnable_context`'s data (val mIoU about
    0.26, not one class everywhere), saved once; load a fresh copy in each test."""
    from edgeseg.models.io import save_model
    from edgeseg.models.zoo import build_model
    from edgeseg.recipe import ModelSpec, TrainConfig
    from edgeseg.training import fit_segmentation

    folder = tmp_path_factory.mktemp("trained_student")
    model = build_model(ModelSpec(arch="lraspp", alpha=0.35), (64, 64), 4, seed=0)
    config = TrainConfig(epochs=6, lr=0.005, class_weights="median_frequency", tensorboard=False)
    fit_segmentation(model, model, config, _context(folder, _learnable_recipe()))
    return save_model(model, folder / "student.keras")


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


@pytest.fixture(scope="session")
def tiny_labels_export(tiny_export, tmp_path_factory):
    """tiny_export's trained model exported with `output: labels`: uint8 class ids [1, 32, 32]."""
    import edgeseg
    from edgeseg.recipe import parse_recipe

    recipe = tiny_recipe_dict(
        name="labels",
        teacher={"path": str(tiny_export / "01-train" / "model.keras")},
        stages=[{"quantize": {"calibration_images": 16}}, {"verify": {"gallery_images": 0}}, {"export": {"output": "labels"}}],
    )
    del recipe["student"]
    return edgeseg.run(parse_recipe(recipe), runs_dir=tmp_path_factory.mktemp("labels_export")).run_dir
