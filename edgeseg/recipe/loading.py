"""Reading a recipe file, or a recipe or data section already parsed, into validated sections."""

from __future__ import annotations

import os
from pathlib import Path

import yaml
from pydantic import TypeAdapter

from edgeseg.errors import RecipeError
from edgeseg.recipe.base import short
from edgeseg.recipe.data import DataConfig, FolderData, SyntheticData
from edgeseg.recipe.messages import validated
from edgeseg.recipe.root import Recipe


def load_recipe(path: str | os.PathLike) -> Recipe:
    """Reads and validates a recipe; every problem is a `RecipeError` naming the YAML key.

    Example:
        >>> recipe = load_recipe("recipes/quickstart.yaml")
        >>> recipe.data.format
        'synthetic'
    """
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as error:
        raise RecipeError(f"{path}: cannot read recipe: {error.strerror or error}") from None
    try:
        raw = yaml.safe_load(text)
    except RecursionError:
        raise RecipeError(f"{path}: YAML nested too deeply") from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f":{mark.line + 1}:{mark.column + 1}" if mark else ""
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]
        raise RecipeError(f"{path}{where}: not valid YAML: {problem}") from None
    if not isinstance(raw, dict):
        raise RecipeError(f"{path}: expected a mapping of recipe sections. Received: {short(raw)}")
    return parse_recipe(raw, base_dir=path.parent, source=str(path))


def parse_recipe(raw: dict, base_dir: str | Path = ".", source: str = "<recipe>") -> Recipe:
    """Validates an already-parsed recipe mapping; relative paths resolve against `base_dir`."""
    return validated(lambda: Recipe.model_validate(raw, context={"base_dir": Path(base_dir)}), (), source)


def parse_data(raw: dict, base_dir: str | Path = ".", source: str = "<data>") -> SyntheticData | FolderData:
    """Validates a `data:` section on its own, e.g. for `edgeseg eval`."""
    adapter = TypeAdapter(DataConfig)
    return validated(lambda: adapter.validate_python(raw, context={"base_dir": Path(base_dir)}), ("data",), source)


def recipe_json_schema() -> dict:
    """The JSON Schema of a recipe, for editors' completion and validation."""
    return Recipe.model_json_schema()
