"""What kind of model a file is, told from the path alone (no TensorFlow), for recipe validation."""

from pathlib import Path


def is_teach_only(path) -> bool:
    """A `.tflite`, or a SavedModel folder not written by tf_keras (Keras 3's `export`, plain
    TensorFlow): a model that can give logits but not be trained here."""
    path = Path(path)
    if path.suffix == ".tflite":
        return True
    return path.is_dir() and (path / "saved_model.pb").is_file() and not (path / "keras_metadata.pb").is_file()
