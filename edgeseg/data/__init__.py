"""Datasets: the `data:` section of a recipe turned into in-memory splits and tf.data pipelines."""

from edgeseg.data.split import SegmentationSplit
from edgeseg.errors import DataError


def load_split(data, split: str, seed: int) -> SegmentationSplit:
    """Loads split `train` or `val` of a recipe's data section at its input size.

    Example::

        val = load_split(recipe.data, "val", recipe.seed)
    """
    if data.format == "synthetic":
        from edgeseg.data.synthetic import generate_scenes

        if split not in ("train", "val"):
            raise DataError(f"synthetic data has the splits train and val. Received: split={split!r}")
        count = data.num_train if split == "train" else data.num_val
        images, labels = generate_scenes(count, tuple(data.input_size), data.num_classes, seed, split)
        return SegmentationSplit(split, images, labels, data.ignore_index)
    from edgeseg.data.folder import load_folder_split

    return load_folder_split(data, split)


def data_fingerprint(data) -> str:
    """What the files of a data section look like now (names and contents of every
    image and label of train and val, and of `unlabeled`), for the resume keys of the stages that
    read the data: relabelling or removing a file reruns them. Synthetic data has no files: ""."""
    if data.format == "synthetic":
        return ""
    from edgeseg.data.folder import split_files
    from edgeseg.files import files_fingerprint

    files = [path for split in ("train", "val") for pair in split_files(data, split) for path in pair]
    return files_fingerprint(files + ([data.unlabeled] if data.unlabeled is not None else []))


__all__ = ["SegmentationSplit", "data_fingerprint", "load_split"]
