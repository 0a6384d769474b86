"""What every recipe section shares: strict keys, paths resolved against the recipe's folder, and
short renderings of received values for error lines."""

from __future__ import annotations

import reprlib
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationInfo

_REPR = reprlib.Repr()  # bounded depth and length: recipes can hold arbitrarily nested junk
_REPR.maxlevel, _REPR.maxstring, _REPR.maxother = 3, 60, 60


class Section(BaseModel):
    """A recipe section: unknown keys are errors, so a typo never passes silently."""

    model_config = ConfigDict(extra="forbid")


def resolve_path(path: Path, info: ValidationInfo) -> Path:
    """Resolves `path` against the recipe's folder (the validation context's base_dir)."""
    try:
        expanded = path.expanduser()
    except RuntimeError:
        raise ValueError(f"cannot expand '~' in the path. Received: {info.field_name}={str(path)!r}") from None
    return (Path((info.context or {}).get("base_dir", ".")) / expanded).resolve()


def resolve_folder(folder: Path, info: ValidationInfo, what: str = "folder") -> Path:
    """`resolve_path` for a key that names a folder, which must exist."""
    resolved = resolve_path(folder, info)
    if not resolved.is_dir():
        raise ValueError(f"{what} not found: {resolved}. Received: {info.field_name}={str(folder)!r}")
    return resolved


def short(value: Any, limit: int = 80) -> str:
    """A bounded repr of a received value, for one-line errors."""
    text = _REPR.repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def names_the_model(command: str | None) -> str | None:
    """A measure command as given, once it is known to say where the .tflite's path goes."""
    if command is not None and "{model}" not in command:
        raise ValueError(f"expected {{model}} where the .tflite's path goes. Received: {command!r}")
    return command
