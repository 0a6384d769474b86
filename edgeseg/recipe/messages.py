"""Pydantic's validation errors turned into one line each, naming the YAML key the user wrote,
what was expected and what was received, with a "did you mean" for near-miss keys and values."""

from __future__ import annotations

import difflib
import re
import types
import typing
from collections.abc import Callable
from typing import Annotated, Any, TypeVar, Union

from pydantic import BaseModel, ValidationError

from edgeseg.errors import RecipeError
from edgeseg.recipe.base import short
from edgeseg.recipe.root import Recipe
from edgeseg.recipe.stages import STAGE_CONFIGS

T = TypeVar("T")


def validated(validate: Callable[[], T], loc_prefix: tuple, source: str) -> T:
    """The result of `validate()`, or a `RecipeError` with one line per problem, each prefixed by `source`."""
    try:
        return validate()
    except ValidationError as error:
        problems = [_describe_problem({**p, "loc": loc_prefix + tuple(p["loc"])}) for p in error.errors()]
        # Whole-recipe checks already name their stages[i] in the message.
        problems = [line.removeprefix("recipe: ") for line in problems]
        raise RecipeError("\n".join(f"{source}: {line}" for line in problems)) from None
    except (TypeError, ValueError, RecursionError) as error:  # e.g. unhashable YAML keys
        raise RecipeError(f"{source}: malformed recipe: {error}") from None


def _describe_problem(problem: dict) -> str:
    key_path, _ = _walk_location(problem["loc"])
    kind, received = problem["type"], problem.get("input")
    message = problem["msg"].removeprefix("Value error, ")
    if kind == "extra_forbidden":
        key = str(problem["loc"][-1])
        parent_path, allowed_keys = _walk_location(problem["loc"][:-1])
        return f"{key_path}: unknown key {key!r} in {parent_path}{_did_you_mean(key, allowed_keys)}"
    if kind == "missing":
        return f"{key_path}: required key is missing"
    if kind == "unknown_stage":
        given = list(received) if isinstance(received, dict) else received
        if isinstance(received, dict) and len(received) == 1:
            (name,) = received
            hint = _did_you_mean(str(name), list(STAGE_CONFIGS))
            return f"{key_path}: unknown stage {str(name)!r}{hint}; stages are: {', '.join(STAGE_CONFIGS)}"
        return f"{key_path}: expected one `stage_name: {{options}}` mapping. Received: {short(given)}"
    if kind == "literal_error" and isinstance(received, str):
        expected = re.findall(r"'([^']*)'", str(problem.get("ctx", {}).get("expected", "")))
        return f"{key_path}: {message}{_did_you_mean(received, expected)}. Received: {short(received)}"
    if "Received:" in message or isinstance(received, dict):
        return f"{key_path}: {message}"
    return f"{key_path}: {message}. Received: {short(received)}"


def _walk_location(loc: tuple) -> tuple[str, list[str]]:
    """Turns a pydantic error location into a YAML key path, and lists the keys allowed there."""
    candidates: list[Any] = [Recipe]
    shown = ""
    for part in loc:
        models = [c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)]
        if isinstance(part, int):
            shown += f"[{part}]"
            candidates = [inner for c in candidates for inner in _unwrap(c, through_lists=True)]
            continue
        if len(models) > 1:  # a union member's tag, not a key the user wrote
            candidates = [m for m in models if _union_tag(m) == part] or models
            continue
        key = part if str(part).isidentifier() else repr(part)
        shown += f".{key}" if shown else key
        field = models[0].model_fields.get(part) if models else None
        candidates = _unwrap(field.annotation) if field else []
    models = [c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)]
    return shown or "recipe", [key for model in models for key in model.model_fields]


def _unwrap(annotation: Any, through_lists: bool = False) -> list[Any]:
    origin = typing.get_origin(annotation)
    if origin is Annotated:
        return _unwrap(typing.get_args(annotation)[0], through_lists)
    if origin in (Union, types.UnionType):
        return [m for arg in typing.get_args(annotation) for m in _unwrap(arg, through_lists)]
    if through_lists and origin is list:
        return _unwrap(typing.get_args(annotation)[0])
    return [annotation]


def _union_tag(model: type[BaseModel]) -> str | None:
    format_field = model.model_fields.get("format")
    if format_field is not None:
        return typing.get_args(format_field.annotation)[0]
    return next(iter(model.model_fields)) if len(model.model_fields) == 1 else None


def _did_you_mean(word: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""
