"""`evaluate`: score any segmentation `.tflite` or Keras model file on a dataset.

Example::

    scores = evaluate(Path("runs/quickstart/model.tflite"), "recipes/quickstart.yaml")
    scores["miou"], scores["per_class_iou"]
"""

from pathlib import Path

from edgeseg.data import load_split
from edgeseg.errors import DataError, ModelError
from edgeseg.recipe import Recipe, load_recipe, parse_data
from edgeseg.scoring import score_split
from edgeseg.segmenter import KerasSegmenter

KERAS_SUFFIXES = (".keras", ".h5")


def evaluate(model, data, split: str = "val", threads: int = 2, seed: int | None = None, trust_model_code: bool = False) -> dict:
    """Scores `model` (a `.tflite`, `.keras`, `.h5` or SavedModel path) on a split of `data`.

    `data` is a recipe (its data section is used), a path to a recipe YAML, a dataset folder
    in the `folder` layout (classes from its dataset.json), or "synthetic". `split` is train, val
    or, for a dataset folder or a recipe's folder data, any folder `<root>/<split>` holding images/
    and labels/ (a held-out test set). Images are resized to the model's input size; logits smaller
    than the input are resized up; the class count must match the model's output. `seed` picks the
    synthetic scenes; by default the recipe's seed, so a run's `verify` images are re-scored. A
    Keras file with Lambda layers loads only with `trust_model_code`.
    """
    model = Path(model)
    segmenter, input_size, num_classes = _segmenter(model, threads, trust_model_code)
    if isinstance(data, (str, Path)) and Path(data).suffix in (".yaml", ".yml"):
        data = load_recipe(data)
    data_config = _data_config(data, input_size, num_classes)
    if seed is None:
        seed = data.seed if isinstance(data, Recipe) else 0
    if len(data_config.classes) != num_classes:
        raise DataError(
            f"{model}: the model predicts {num_classes} classes but the data has {len(data_config.classes)} "
            f"({', '.join(data_config.classes)})"
        )
    scores = score_split(segmenter, load_split(data_config, split, seed), num_classes, desc=f"scoring {model.name}")
    return {"model": str(model), "split": split, "classes": list(data_config.classes), **scores}


def _segmenter(model: Path, threads: int, trust_model_code: bool):
    if model.suffix == ".tflite":
        from edgeseg.tflite import TFLiteSegmenter

        if not model.is_file():
            raise ModelError(f"{model}: model file not found")
        segmenter = TFLiteSegmenter(model, threads=threads)
        if segmenter.outputs_labels:
            from edgeseg.contract import load_export

            # Class ids do not say how many classes there are; the export's description does.
            return segmenter, segmenter.input_size, len(load_export(model).class_names)
        output_shape = [int(side) for side in segmenter.output["shape"]]
        if len(output_shape) != 4:
            raise ModelError(f"{model}: expected logits [1, H, W, C] or class ids [1, H, W]. Received: output {output_shape}")
        return segmenter, segmenter.input_size, int(output_shape[-1])
    if model.suffix in KERAS_SUFFIXES or model.is_dir():
        from edgeseg.models.io import check_segmentation_model, load_model

        keras_model = load_model(model, trust_model_code=trust_model_code)
        check_segmentation_model(keras_model, str(model), smaller_output=True)
        return KerasSegmenter(keras_model), tuple(keras_model.input_shape[1:3]), int(keras_model.output_shape[-1])
    raise ModelError(f"{model}: expected a .tflite, .keras, .h5 file or a SavedModel folder")


def _data_config(data, input_size, num_classes: int):
    size = {"input_size": tuple(input_size)}
    if isinstance(data, Recipe):
        return data.data.model_copy(update=size)
    if str(data) == "synthetic":
        return parse_data({"format": "synthetic", "num_classes": num_classes, **size}, source="synthetic")
    path = Path(data)
    if path.is_dir():
        return parse_data({"format": "folder", "root": str(path), **size}, source=str(path))
    raise DataError(f"{data}: expected a recipe .yaml, a dataset folder or 'synthetic'")
