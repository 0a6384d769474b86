"""Helpers shared by the tests: recipes written from the quickstart, tiny folder datasets, the CLI in
a subprocess, the contract every stage keeps, one-line recipe errors.

Import them as `from tests.helpers import ...`; importing this module does not import TensorFlow
(the helpers that need it import it when called).
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
QUICKSTART = REPO / "recipes" / "quickstart.yaml"
ANDROID_APP = REPO / "android_demo"

REMOVE = object()
"""Pass as an override value to drop a top-level key from the recipe."""


def quickstart_dict() -> dict:
    """A fresh, mutable copy of recipes/quickstart.yaml as a dict."""
    return yaml.safe_load(QUICKSTART.read_text())


def recipe_dict(**overrides) -> dict:
    """The quickstart recipe with top-level keys replaced (or dropped with `REMOVE`)."""
    recipe = quickstart_dict()
    for key, value in overrides.items():
        if value is REMOVE:
            recipe.pop(key, None)
        else:
            recipe[key] = copy.deepcopy(value)
    return recipe


def write_yaml(path: Path, content) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(content, sort_keys=False))
    return path


def write_recipe(tmp_path: Path, filename: str = "recipe.yaml", **overrides) -> Path:
    """Writes the quickstart recipe with `overrides` applied to tmp_path/filename; returns its path."""
    return write_yaml(Path(tmp_path) / filename, recipe_dict(**overrides))


def stages(*names_or_entries) -> list[dict]:
    """`stages("train", "quantize")` -> [{"train": {}}, {"quantize": {}}]; dict entries pass through."""
    return [entry if isinstance(entry, dict) else {entry: {}} for entry in names_or_entries]


# ----------------------------------------------------------------------------- folder datasets

IMAGE_HEIGHT, IMAGE_WIDTH = 40, 48


def write_image(path: Path, rgb: np.ndarray | None = None, seed: int = 0) -> Path:
    """Writes an RGB uint8 image (noise by default) as jpg/png, converting to OpenCV's BGR order."""
    if rgb is None:
        rgb = np.random.default_rng(seed).integers(0, 256, (IMAGE_HEIGHT, IMAGE_WIDTH, 3), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), np.ascontiguousarray(rgb[..., ::-1])), path
    return path


def write_label(path: Path, label: np.ndarray) -> Path:
    """Writes a label PNG as is: [H, W] ids (uint8 or uint16), or [H, W, 3] RGB colors (written as BGR)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    array = label[..., ::-1] if label.ndim == 3 else label
    assert cv2.imwrite(str(path), np.ascontiguousarray(array)), path
    return path


def striped_label(num_classes: int, height: int = IMAGE_HEIGHT, width: int = IMAGE_WIDTH) -> np.ndarray:
    """Vertical bands of class ids 0..num_classes-1, each band as wide as the image allows."""
    band = np.arange(width) * num_classes // width
    return np.broadcast_to(band.astype(np.uint8), (height, width)).copy()


def make_split(root: Path, split: str, stems, num_classes: int = 3, image_suffix: str = ".png") -> Path:
    """root/split/images/<stem><suffix> + root/split/labels/<stem>.png with striped labels."""
    for index, stem in enumerate(stems):
        write_image(root / split / "images" / f"{stem}{image_suffix}", seed=index)
        write_label(root / split / "labels" / f"{stem}.png", striped_label(num_classes))
    return root / split


def write_manifest(root: Path, **content) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    path = root / "dataset.json"
    path.write_text(json.dumps(content))
    return path


TINY_RECIPE = {
    "name": "tiny",
    "seed": 0,
    "data": {"format": "synthetic", "num_classes": 4, "input_size": [32, 32], "batch_size": 8, "num_train": 64, "num_val": 16},
    "teacher": {"arch": "deeplabv3plus", "backbone": "mobilenet_v2", "alpha": 0.35},
    "student": {"arch": "lraspp", "backbone": "mobilenet_v2", "alpha": 0.35},
    "stages": [
        {"train": {"epochs": 2, "lr": 0.003}},
        {"distill": {"epochs": 1, "lr": 0.003}},
        {"prune": {"target_sparsity": 0.5, "epochs": 2}},
        {"cluster": {"clusters": 8, "epochs": 1}},
        {"quantize": {"calibration_images": 16}},
        {"verify": {"min_miou": 0.05}},
        {"export": {}},
    ],
}


def tiny_recipe_dict(**overrides) -> dict:
    """A deep copy of TINY_RECIPE with top-level keys replaced."""
    recipe = copy.deepcopy(TINY_RECIPE)
    recipe.update(copy.deepcopy(overrides))
    return recipe


def weights_equal(before: list[np.ndarray], after: list[np.ndarray]) -> bool:
    return len(before) == len(after) and all(np.array_equal(a, b) for a, b in zip(before, after))


def run_cli(*args, cwd):
    """`python -m edgeseg ARGS` in a subprocess, as a user runs it; returns the completed process."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "edgeseg", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=900)


def load_error(path) -> str:
    """The message of the RecipeError that loading `path` raises."""
    from edgeseg.errors import RecipeError
    from edgeseg.recipe import load_recipe

    with pytest.raises(RecipeError) as caught:
        load_recipe(path)
    return str(caught.value)


def assert_one_problem(message: str, path, *fragments: str) -> None:
    """A single problem: one line, starting with the recipe file, naming every fragment."""
    assert "\n" not in message, f"expected one line for one problem, got:\n{message}"
    assert message.startswith(f"{path}:"), message
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"


def android_app_copy(tmp_path: Path) -> Path:
    """The Android project without anything a build or an earlier copy left in it."""
    return shutil.copytree(ANDROID_APP, tmp_path / "android_demo", ignore=shutil.ignore_patterns("assets", "build", ".gradle"))


def run_stage_test(name: str, state, ctx, **options):
    """Runs stage `name` with settings built from `options` and checks the contract every stage keeps.

    The input model is not changed, a new state comes back whose model's layers are its own, the
    record is JSON, and any artifact named in the record exists inside the stage folder.
    """
    from edgeseg._keras import keras
    from edgeseg.recipe import STAGE_SETTINGS
    from edgeseg.stages import STAGES
    from edgeseg.stages.base import StageOutcome

    before = state.model.get_weights()
    outcome = STAGES[name].apply(state, STAGE_SETTINGS[name](**options), ctx)
    assert isinstance(outcome, StageOutcome)
    assert weights_equal(before, state.model.get_weights()), f"{name} changed its input model"
    json.dumps(outcome.record)
    returned = outcome.state.model
    if returned is not state.model and hasattr(returned, "layers"):
        # Its layers belong to it alone: a sub-model from any layer's output builds (QAT, labels need it).
        keras.Model(returned.input, [layer.output for layer in returned.layers[1:]])
    if "artifact" in outcome.record:
        assert (ctx.run_dir / outcome.record["artifact"]).is_file()
        assert (ctx.run_dir / outcome.record["artifact"]).parent == ctx.stage_dir
    return outcome
