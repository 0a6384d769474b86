"""edgeseg: Keras segmentation models to verified int8 `.tflite` files for phones.

Example::

    import edgeseg
    recipe = edgeseg.load_recipe("recipes/quickstart.yaml")
    result = edgeseg.run(recipe)                       # trains, compresses, quantizes, verifies
    edgeseg.evaluate(result.model_path, "synthetic")["miou"]
"""

import os

from edgeseg.errors import (
    DataError,
    EdgesegError,
    ModelError,
    RecipeError,
    StageError,
    VerificationError,
)
from edgeseg.recipe import load_recipe
from edgeseg.version import __version__


def run(recipe, runs_dir="runs", resume: bool = False):
    """Runs a recipe (a `Recipe` or a path to one); see `edgeseg.pipeline.run`."""
    from edgeseg.pipeline import run as run_pipeline

    if isinstance(recipe, (str, os.PathLike)):
        recipe = load_recipe(recipe)
    return run_pipeline(recipe, runs_dir, resume=resume)


def evaluate(model, data, split: str = "val", threads: int = 2, seed: int | None = None, trust_model_code: bool = False) -> dict:
    """Scores a `.tflite` or Keras model file on a dataset; see `edgeseg.evaluation.evaluate`."""
    from edgeseg.evaluation import evaluate as evaluate_model

    return evaluate_model(model, data, split=split, threads=threads, seed=seed, trust_model_code=trust_model_code)


__all__ = [
    "__version__",
    "load_recipe",
    "run",
    "evaluate",
    "EdgesegError",
    "RecipeError",
    "DataError",
    "ModelError",
    "StageError",
    "VerificationError",
]
