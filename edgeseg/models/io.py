"""Loading and saving models, with errors that say which file and what to do."""

import json
import zipfile
from pathlib import Path

from edgeseg._keras import keras
from edgeseg.errors import ModelError
from edgeseg.files import atomic_path
from edgeseg.models.copying import copy_model

CODE_LAYERS = frozenset({"Lambda"})
"""Layer classes whose config carries Python code that runs when the file loads."""


def save_model(model: keras.Model, path: Path) -> Path:
    """Saves `model`'s architecture and weights as a `.keras` file, atomically.

    Optimizer state is left out (a compiled model is saved as a fresh uncompiled copy), so the
    file's size is what the model itself weighs.
    """
    with atomic_path(path) as temporary:
        # Copying takes seconds for a TF-MOT-stripped model, which is uncompiled already.
        (model if model.optimizer is None else copy_model(model)).save(temporary)
    return path


def load_model(path: Path, trust_model_code: bool = False) -> keras.Model:
    """Loads a `.keras`, `.h5` or SavedModel segmentation model.

    `Lambda` layers carry arbitrary Python code that runs when the file loads, so a file holding
    one is refused unless `trust_model_code` is set; `.keras` files load with `safe_mode` on
    otherwise.

    Example::

        teacher = load_model(Path("runs/quickstart/01-train/model.keras"))
    """
    path = Path(path)
    if not path.exists():
        raise ModelError(f"{path}: model file not found")
    if path.suffix == ".keras":
        _refuse_keras3_file(path)
    if not trust_model_code:
        found = code_layers(path)
        if found:
            raise ModelError(
                f"{path}: contains Lambda layers ({', '.join(found[:3])}), which run arbitrary Python code when loaded; "
                "set trust_model_code: true (--trust_model_code for a command) only if you trust where the file came from"
            )
    try:
        if path.suffix == ".keras":
            model = keras.models.load_model(path, compile=False, safe_mode=not trust_model_code)
        else:
            model = keras.models.load_model(path, compile=False)
    except Exception as error:  # Keras raises many unrelated types for a bad file
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ModelError(f"{path}: not a loadable Keras model ({first_line[:200]})") from None
    return model


def load_weights_into(model: keras.Model, path: Path) -> None:
    """Loads a weights file into `model`; the architectures must match."""
    try:
        model.load_weights(path)
    except Exception as error:  # same reason as above
        raise ModelError(f"{path}: weights do not fit {model.name} ({str(error).splitlines()[0][:200]})") from None


def check_segmentation_model(
    model: keras.Model, source: str, input_size=None, num_classes: int | None = None, smaller_output: bool = False
) -> None:
    """Checks the model maps [N, H, W, 3] images to [N, H, W, C] logits, matching the recipe when given.

    With `smaller_output` (scoring only), logits [N, h, w, C] smaller than the input are accepted:
    scoring resizes them up; training needs them at the input's size.
    """
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise ModelError(
            f"{source}: expected one image input and one logits output. "
            f"Received: {len(model.inputs)} inputs, {len(model.outputs)} outputs"
        )
    in_shape, out_shape = tuple(model.input_shape), tuple(model.output_shape)
    if len(in_shape) != 4 or in_shape[-1] != 3 or len(out_shape) != 4:
        raise ModelError(
            f"{source}: expected input [N, H, W, 3] and logits [N, H, W, C]. Received: input {list(in_shape)}, "
            f"output {list(out_shape)}"
        )
    smaller = smaller_output and all(o is not None and i is not None and o <= i for i, o in zip(in_shape[1:3], out_shape[1:3]))
    if in_shape[1:3] != out_shape[1:3] and not smaller:
        expected = "no larger than its input" if smaller_output else "at the input's size"
        raise ModelError(f"{source}: expected logits {expected}. Received: input {list(in_shape)}, output {list(out_shape)}")
    if input_size is not None and tuple(in_shape[1:3]) != tuple(input_size):
        raise ModelError(f"{source}: model input is {list(in_shape[1:3])} but data.input_size is {list(input_size)}")
    if num_classes is not None and out_shape[-1] != num_classes:
        raise ModelError(f"{source}: model predicts {out_shape[-1]} classes but the data has {num_classes}")


def code_layers(path: Path) -> list[str]:
    """Names of the layers in the file's architecture, nested models included, whose class carries
    Python code (`CODE_LAYERS`), read from the parsed config, so no spelling of the class name
    (JSON escapes included) slips past. An architecture that cannot be parsed is refused, since it
    cannot be checked."""
    found: list[str] = []

    def walk(node) -> None:
        if isinstance(node, dict):
            if node.get("class_name") in CODE_LAYERS:
                config = node.get("config")
                found.append(str(config.get("name", "?")) if isinstance(config, dict) else "?")
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    for text in _architecture_texts(path):
        try:
            walk(json.loads(text))
        except (ValueError, RecursionError):
            raise ModelError(f"{path}: its architecture is not readable JSON, so it cannot be checked for code") from None
    return found


def _architecture_texts(path: Path) -> list[str]:
    """The JSON architecture descriptions stored in a model file (none for a file without one)."""
    try:
        if path.suffix == ".keras":
            with zipfile.ZipFile(path) as archive:
                return [archive.read("config.json").decode(errors="replace")] if "config.json" in archive.namelist() else []
        if path.suffix == ".h5":
            import h5py

            with h5py.File(path, "r") as file:
                config = file.attrs.get("model_config", "")
                return [config.decode(errors="replace") if isinstance(config, bytes) else str(config)] if config else []
        metadata = path / "keras_metadata.pb"
        if not metadata.is_file():
            return []
        from tf_keras.protobuf import saved_metadata_pb2

        saved = saved_metadata_pb2.SavedMetadata()
        saved.ParseFromString(metadata.read_bytes())
        return [node.metadata for node in saved.nodes if node.metadata]
    except (OSError, zipfile.BadZipFile):
        return []  # the loader below reports an unreadable file with its own message
    except Exception as error:  # h5py and protobuf raise their own types for a damaged file
        raise ModelError(f"{path}: cannot read its architecture to check it for code ({type(error).__name__})") from None


def _refuse_keras3_file(path: Path) -> None:
    try:
        with zipfile.ZipFile(path) as archive:
            metadata = json.loads(archive.read("metadata.json")) if "metadata.json" in archive.namelist() else {}
    except (zipfile.BadZipFile, OSError, json.JSONDecodeError):
        raise ModelError(f"{path}: not a .keras archive (corrupt or another format)") from None
    version = str(metadata.get("keras_version", ""))
    if version.startswith("3"):
        raise ModelError(
            f"{path}: saved by Keras {version}; edgeseg's pruning, clustering and QAT need tf_keras (Keras 2). "
            "Rebuild the model with tf_keras and save it again, or export its weights and set teacher.weights; "
            "to use it only as a teacher, export it (model.export('folder')) and set teacher.path to that folder"
        )
