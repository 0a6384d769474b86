"""The Android demo (`android_demo/`) and an export: copying one into the other, checked against the app.

The app reads `edgeseg.json` in one Kotlin file, `ModelContract.kt`, with literal keys. This module
reads that file too: the key paths the app reads, the tensor types it can feed and read, and the
values it requires. So `copy_export_to_app` refuses, on the computer, an export the phone would refuse
for any of those reasons (the app's checks of shapes and scales run only on the phone).

Example::

    copy_export_to_app("runs/quickstart", "android_demo")
    "output.dtype" in android_contract_keys(Path("android_demo", APP_CONTRACT_SOURCE).read_text())
"""

import json
import re
from pathlib import Path
from typing import NamedTuple

from edgeseg.contract import DESCRIPTION_FILE, MODEL_FILE, dotted_value, load_export
from edgeseg.errors import ModelError
from edgeseg.files import atomic_path

# Where the app keeps what it reads, relative to the Android project folder.
APP_CONTRACT_SOURCE = Path("app/src/main/java/dev/edgeseg/demo/ModelContract.kt")
APP_ASSETS = Path("app/src/main/assets")

# `const val` names in ModelContract.kt and the edgeseg.json key whose value must equal one of them.
APP_CONSTANT_KEYS = {
    "SUPPORTED_FORMAT": "format",
    "SUPPORTED_CHANNELS": "input.channels",
    "SUPPORTED_COLOR_ORDER": "input.color_order",
    "LOGITS_OUTPUT_KIND": "output.kind",
    "LABELS_OUTPUT_KIND": "output.kind",
}
TENSOR_TYPE_KEYS = ("input.dtype", "output.dtype")

# A Kotlin string literal (kept), or a comment (dropped so that keys named in comments don't count).
_LITERAL_OR_COMMENT = re.compile(r'"(?:\\.|[^"\\\n])*"|//[^\n]*|/\*.*?\*/', re.S)
# `val json = JSONObject(text)`: a parsed edgeseg.json, the root of every key path.
_ROOT = re.compile(r"\b(?:val|var)\s+(\w+)\s*=\s*JSONObject\(")
# `receiver.getX(...).optY(...)`, optionally bound: `val input = json.getJSONObject("input")`.
_CHAIN = re.compile(
    r"(?:\b(?:val|var)\s+(?P<bound>\w+)\s*=\s*)?"
    r"(?<![\w.])(?P<receiver>\w+)(?P<calls>(?:\s*\.\s*(?:get|opt)\w*\([^()]+\))+)"
)
_CALL = re.compile(r"\.\s*(?:get|opt)\w*\(\s*(?P<argument>[^()]+?)\s*\)")
_KEY_ARGUMENT = re.compile(r'^"([^"]*)"')
_TENSOR_TYPE = re.compile(r'^\s*(\w+)\("(\w+)",\s*(\d+),\s*(?:(-?\d+)\.\.(-?\d+)|null)\)', re.M)
_CONSTANT = re.compile(r'^\s*const\s+val\s+(\w+)\s*=\s*(?:"([^"]*)"|(-?\d+))\s*$', re.M)


class AppTensorType(NamedTuple):
    """A tensor element type the app handles, as its `TensorType` enum declares it."""

    bytes_per_element: int
    integer_range: tuple[int, int] | None


class _AppContract(NamedTuple):
    keys: set[str]
    tensor_types: dict[str, AppTensorType]
    constants: dict[str, str | int]


def copy_export_to_app(export_path: str | Path, app_dir: str | Path) -> list[Path]:
    """Copies an export's `model.tflite` and `edgeseg.json` into the app's assets; returns their paths.

    The export is a run folder or a `.tflite` (see `load_export`). It is checked against the app's
    `ModelContract.kt` first: every key the app reads is there, the input and output dtypes are ones
    the app handles, and format, channels, color order and output kind are the ones it requires. Both
    files are written in full before either replaces the one in the assets, so a failed copy leaves
    the app with the model and description it had.

    Example::

        copy_export_to_app("runs/quickstart", "android_demo")
    """
    export = load_export(export_path)
    app_dir = Path(app_dir)
    beside = export.model_path.with_name(DESCRIPTION_FILE)
    description_source = beside if beside.is_file() else export.model_path
    _check_app_can_read(export.description, _read_app_contract(app_dir), description_source)

    assets = app_dir / APP_ASSETS
    model_path, description_path = assets / MODEL_FILE, assets / DESCRIPTION_FILE
    with atomic_path(model_path) as model_partial, atomic_path(description_path) as description_partial:
        model_partial.write_bytes(export.model_path.read_bytes())
        description_partial.write_text(json.dumps(export.description, indent=2) + "\n")
    return [model_path, description_path]


def android_contract_keys(kotlin_source: str) -> set[str]:
    """The dotted key paths of edgeseg.json that Kotlin source reads; `[]` stands for each array element.

    Follows `org.json` reads with literal keys from a `JSONObject(...)` root, through variables bound
    to sub-objects. A read whose object it cannot trace back to a root raises ValueError, so a key
    cannot go unchecked by being read in a way this parser does not follow.

    Example:
        >>> sorted(android_contract_keys('''
        ...     val json = JSONObject(text)
        ...     val input = json.getJSONObject("input")
        ...     val height = input.getInt("height")
        ...     val entry = json.getJSONArray("classes").getJSONObject(index)
        ...     entry.getString("name")
        ... '''))
        ['classes', 'classes[].name', 'input', 'input.height']
    """
    code = _without_comments(kotlin_source)
    paths = {match.group(1): "" for match in _ROOT.finditer(code)}
    keys, traced = set(), set()
    for chain in _CHAIN.finditer(code):
        path = paths.get(chain.group("receiver"))
        if path is None:
            continue
        calls_start = chain.start("calls")
        for call in _CALL.finditer(chain.group("calls")):
            traced.add(calls_start + call.start())
            key = _KEY_ARGUMENT.match(call.group("argument"))
            path = (f"{path}.{key.group(1)}" if path else key.group(1)) if key else f"{path}[]"
            if key:
                keys.add(path)
        if chain.group("bound"):
            paths[chain.group("bound")] = path
    for call in _CALL.finditer(code):
        if _KEY_ARGUMENT.match(call.group("argument")) and call.start() not in traced:
            line = code.count("\n", 0, call.start()) + 1
            raise ValueError(
                f"line {line}: cannot trace which JSON object {call.group(0).lstrip('.').strip()} reads; "
                "read edgeseg.json through variables bound to JSONObject(...) or to its sub-objects"
            )
    return keys


def android_tensor_types(kotlin_source: str) -> dict[str, AppTensorType]:
    """The entries of the app's `TensorType` enum by dtype name, e.g. `{"uint8": AppTensorType(1, (0, 255))}`."""
    types = {
        name: AppTensorType(int(size), (int(low), int(high)) if low else None)
        for _, name, size, low, high in _TENSOR_TYPE.findall(kotlin_source)
    }
    if not types:
        raise ValueError('no TensorType entries like UINT8("uint8", 1, 0..255) in the Kotlin source')
    return types


def android_constants(kotlin_source: str) -> dict[str, str | int]:
    """The top-level `const val` string and integer constants of Kotlin source, by name."""
    return {name: text if number == "" else int(number) for name, text, number in _CONSTANT.findall(kotlin_source)}


def _read_app_contract(app_dir: Path) -> _AppContract:
    contract_source = app_dir / APP_CONTRACT_SOURCE
    if not contract_source.is_file():
        raise ModelError(f"{app_dir}: expected the Android demo project, with {APP_CONTRACT_SOURCE}. Received: {app_dir}")
    kotlin_source = contract_source.read_text()
    try:
        app = _AppContract(
            android_contract_keys(kotlin_source), android_tensor_types(kotlin_source), android_constants(kotlin_source)
        )
    except ValueError as error:
        raise ModelError(f"{contract_source}: {error}") from None
    absent = [name for name in APP_CONSTANT_KEYS if name not in app.constants]
    if absent:
        raise ModelError(f"{contract_source}: no const val {', '.join(absent)}, so the export cannot be checked against it")
    return app


def _check_app_can_read(description: dict, app: _AppContract, source: Path) -> None:
    missing = sorted(key for key in app.keys if not _present(description, key))
    if missing:
        raise ModelError(f"{source}: lacks {', '.join(missing)}, which the Android app reads")
    for key, allowed in app_allowed_values(app.constants).items():
        value = dotted_value(description, key)
        if value not in allowed:
            needed = " or ".join(map(repr, allowed))
            raise ModelError(f"{source}: the Android app needs {key} = {needed}. Received: {key}={value!r}")
    for key in TENSOR_TYPE_KEYS:
        value = dotted_value(description, key)
        if value not in app.tensor_types:
            raise ModelError(
                f"{source}: the Android app handles {', '.join(app.tensor_types)} tensors. Received: {key}={value!r}"
            )


def app_allowed_values(constants: dict) -> dict[str, list]:
    """For each edgeseg.json key the app constrains, the values its `const val`s allow."""
    allowed: dict[str, list] = {}
    for name, key in APP_CONSTANT_KEYS.items():
        allowed.setdefault(key, []).append(constants[name])
    return allowed


def _without_comments(kotlin_source: str) -> str:
    return _LITERAL_OR_COMMENT.sub(lambda m: m.group(0) if m.group(0).startswith('"') else " ", kotlin_source)


def _present(node, path: str) -> bool:
    """Whether `path` (dotted, `[]` meaning every element of an array) leads to a value in `node`."""
    if not path:
        return node is not None
    key, _, rest = path.partition(".")
    if key.endswith("[]"):
        elements = node.get(key[:-2]) if isinstance(node, dict) else None
        return isinstance(elements, list) and all(_present(element, rest) for element in elements)
    return isinstance(node, dict) and key in node and _present(node[key], rest)
