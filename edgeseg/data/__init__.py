"""Datasets: the `data:` section of a recipe turned into in-memory splits and tf.data pipelines."""

from edgeseg.data.split import SegmentationSplit


def load_split(data, split: str, seed: int) -> SegmentationSplit:
    """Loads split `train` or `val` of a recipe's data section at its input size.

    Example::

        val = load_split(recipe.data, "val", recipe.seed)
    """
    if data.format == "synthetic":
        from edgeseg.data.synthetic import generate_scenes

        count = data.num_train if split == "train" else data.num_val
        images, labels = generate_scenes(count, tuple(data.input_size), data.num_classes, seed, split)
        return SegmentationSplit(split, images, labels, data.ignore_index)
    from edgeseg.data.folder import load_folder_split

    return load_folder_split(data, split)


__all__ = ["SegmentationSplit", "load_split"]
