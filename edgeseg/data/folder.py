"""Folder datasets: image files paired with label PNGs of class ids, split by folders, glob
patterns or list files (`edgeseg.recipe.data.SplitSpec`); by default `<root>/<split>/images/*`
paired by file stem with `<root>/<split>/labels/*.png`.

Every file is read and checked before training starts, so a bad file fails the run in seconds
with its path, not an hour in.
"""

import hashlib
import logging
from pathlib import Path

import cv2
import numpy as np

from edgeseg.data.split import SegmentationSplit
from edgeseg.errors import DataError
from edgeseg.images import IMAGE_SUFFIXES, decode, read_label, read_rgb
from edgeseg.progress import progress

log = logging.getLogger("edgeseg")


def load_folder_split(data, split: str) -> SegmentationSplit:
    """Reads, checks and resizes split `split` (train, val, or another the layout knows) of a
    `format: folder` data section.

    A label of another size than its image but of the same aspect ratio (within 1%) is resized to
    it (nearest), counted in one log line; another aspect ratio is an error naming the file.

    Example::

        val = load_folder_split(recipe.data, "val")
    """
    pairs = split_files(data, split)
    height, width = data.input_size
    lookup = label_lookup(data)
    images = np.empty((len(pairs), height, width, 3), np.uint8)
    labels = np.empty((len(pairs), height, width), np.uint8)
    native_labels, resized = [], 0
    for index, (image_path, label_path) in enumerate(progress(pairs, desc=f"loading {split}", unit="img")):
        image = read_rgb(image_path)
        label = read_class_ids(label_path, data, lookup)
        if label.shape != image.shape[:2]:
            label = label_at_image_size(label, image.shape[:2], label_path)
            resized += 1
        images[index] = cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)
        labels[index] = cv2.resize(label, (width, height), interpolation=cv2.INTER_NEAREST)
        native_labels.append(label)
    if resized:
        log.info(
            "data.%s: %d of %d labels had another size than their image and were resized to it (nearest)",
            split,
            resized,
            len(pairs),
        )
    if not (labels != data.ignore_index).any():
        raise DataError(f"data.{split}: every label pixel is ignore_index {data.ignore_index}; nothing to learn or score")
    native = tuple(native_labels) if any(label.shape != (height, width) for label in native_labels) else None
    return SegmentationSplit(split, images, labels, data.ignore_index, native)


def split_files(data, split: str) -> list[tuple[Path, Path]]:
    """(image, label) file pairs of a split of `data`; with `data.val_fraction`, val is the pairs of
    train whose name hashes below the fraction, and train the rest."""
    if data.val_fraction is None or split not in ("train", "val"):
        return split_pairs(data.root, data.split(split), f"data.{split}")
    pairs = split_pairs(data.root, data.train, "data.train")
    chosen = [pair for pair in pairs if in_val_fraction(_pair_name(pair, data.train), data.val_fraction) == (split == "val")]
    if not chosen:
        raise DataError(
            f"data.val_fraction: {data.val_fraction} of the {len(pairs)} pairs of data.train leaves {split} empty. "
            f"Received: val_fraction={data.val_fraction}"
        )
    return chosen


def in_val_fraction(name: str, fraction: float) -> bool:
    """Whether the pair named `name` goes to val: its name's hash, as a number in [0, 1), is below
    `fraction`; the same names go to val whatever else the folder holds.

    Example:
        >>> [in_val_fraction(name, 0.5) for name in ("a", "b", "c")]
        [False, True, True]
    """
    return int(hashlib.sha256(name.encode()).hexdigest()[:8], 16) / 2**32 < fraction


def _pair_name(pair: tuple[Path, Path], spec) -> str:
    image = pair[0]
    return image.name[: -len(spec.image_suffix)] if spec.image_suffix else image.stem


def label_at_image_size(label: np.ndarray, image_size: tuple[int, int], path: Path) -> np.ndarray:
    """`label` resized (nearest) to `image_size` when their aspect ratios agree within 1%; a
    `DataError` naming the file otherwise."""
    (label_h, label_w), (image_h, image_w) = label.shape, image_size
    if abs(label_w / label_h - image_w / image_h) > 0.01 * image_w / image_h:
        raise DataError(
            f"{path}: label is {label_w}x{label_h} but its image is {image_w}x{image_h}, another aspect "
            "ratio; expected the same size, or the same shape at another resolution"
        )
    return cv2.resize(label, (image_w, image_h), interpolation=cv2.INTER_NEAREST)


def split_pairs(root: Path, spec, key: str) -> list[tuple[Path, Path]]:
    """(image, label) file pairs of a split, sorted by the name they share; `key` (e.g. "data.val")
    names the recipe key in errors.

    Example::

        split_pairs(root, SplitSpec(images="train/images/0006R0*", labels="train/labels"), "data.val")
    """
    image_patterns, label_patterns = spec.patterns
    images = _files_by_name(root, image_patterns, IMAGE_SUFFIXES, spec.image_suffix, f"{key}.images")
    labels = _files_by_name(root, label_patterns, (spec.label_suffix,), spec.label_suffix, f"{key}.labels")
    if spec.list_file is not None:
        wanted = _listed_names(spec.list_file)
        for name in wanted:
            if name not in images:
                raise DataError(f"{spec.list_file}: lists {name!r}, but {key}.images has no such image under {root}")
        images = {name: images[name] for name in wanted}
    if not images:
        raise DataError(
            f"{key}.images: no images ({', '.join(IMAGE_SUFFIXES)}) in "
            f"{', '.join(str(root / pattern) for pattern in image_patterns)}; the split is empty"
        )
    for name in sorted(images.keys() - labels.keys()):
        where = [
            str(root / pattern / f"{name}{spec.label_suffix}") if (root / pattern).is_dir() else str(root / pattern)
            for pattern in label_patterns
        ]
        raise DataError(f"{images[name]}: image has no label; expected {' or '.join(where)}")
    if spec.plain_folders:
        for name in sorted(labels.keys() - images.keys()):
            raise DataError(f"{labels[name]}: label has no image in {root / image_patterns[0]}")
    return [(images[name], labels[name]) for name in sorted(images)]


def load_unlabeled_images(folder: Path, input_size: tuple[int, int]) -> np.ndarray:
    """Every image in `folder` (`data.unlabeled`), checked and resized to `input_size` like a split's.

    Example::

        images = load_unlabeled_images(recipe.data.unlabeled, recipe.data.input_size)
    """
    files = _list_files(folder, IMAGE_SUFFIXES)
    if not files:
        raise DataError(f"{folder}: no images ({', '.join(IMAGE_SUFFIXES)}) in data.unlabeled")
    height, width = input_size
    images = np.empty((len(files), height, width, 3), np.uint8)
    for index, stem in enumerate(progress(sorted(files), desc="loading unlabeled", unit="img")):
        images[index] = cv2.resize(read_rgb(files[stem]), (width, height), interpolation=cv2.INTER_AREA)
    return images


def _list_files(folder: Path, suffixes: tuple[str, ...]) -> dict[str, Path]:
    """The image files directly in `folder`, by stem."""
    if not folder.is_dir():
        raise DataError(f"{folder}: folder not found")
    return _by_name(_listed_folder(folder), suffixes, None)


def _files_by_name(root: Path, patterns: list[str], suffixes: tuple[str, ...], suffix: str | None, key: str) -> dict[str, Path]:
    """The files the patterns (folders or globs under `root`) find, by the name they share with
    their pair: the file name without `suffix`, or without its extension."""
    found: list[Path] = []
    for pattern in patterns:
        folder = root / pattern
        if folder.is_dir():
            found += _listed_folder(folder)
            continue
        matches = sorted(root.glob(pattern)) if pattern.strip() else []
        if not matches:
            raise DataError(f"{key}: {root / pattern}: folder not found, and no file matches it as a glob pattern")
        found += matches
    return _by_name(found, suffixes, suffix)


def _listed_folder(folder: Path) -> list[Path]:
    try:
        return sorted(folder.iterdir())
    except OSError as error:
        raise DataError(f"{folder}: cannot list the folder: {error.strerror}") from None


def _by_name(paths: list[Path], suffixes: tuple[str, ...], suffix: str | None) -> dict[str, Path]:
    files: dict[str, Path] = {}
    for path in paths:
        wanted = path.name.endswith(suffix) if suffix else path.suffix.lower() in suffixes
        if not wanted:
            continue
        if not path.is_file():
            if path.is_symlink():
                raise DataError(f"{path}: a broken or looping symbolic link")
            continue
        name = path.name[: -len(suffix)] if suffix else path.stem
        if name in files and files[name] != path:
            raise DataError(f"{path}: two files share the name '{name}' ({files[name]})")
        files[name] = path
    return files


def _listed_names(list_file: Path) -> list[str]:
    """The names in a split's list file: the first word of each non-empty line (a VOC list holds
    names; a list of "image label" paths gives the image's name)."""
    try:
        lines = list_file.read_text().splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise DataError(f"{list_file}: cannot read the split's list: {error}") from None
    return [Path(line.split()[0]).stem for line in lines if line.strip()]


def read_class_ids(path: Path, data, lookup: np.ndarray | None) -> np.ndarray:
    """A label file as class ids [H, W] (or ignore_index): palette indices or stored values through
    the label map, or colors through `data.palette`; a `DataError` naming the file for anything else."""
    label = decode(path, cv2.IMREAD_UNCHANGED) if data.palette is not None else read_label(path)
    if label.dtype != np.uint8:
        raise DataError(f"{path}: label is {label.dtype}; expected 8-bit class ids. Received: dtype={label.dtype}")
    if data.palette is not None:
        return _palette_to_ids(path, label, data)
    if label.ndim == 3:
        raise DataError(
            f"{path}: label has {label.shape[2]} channels; expected single-channel class ids "
            "(set data.palette for color-coded labels)"
        )
    if lookup is not None:
        label = lookup[label]
    bad = np.setdiff1d(np.unique(label), [*range(data.num_classes), data.ignore_index])
    if bad.size:
        raise DataError(
            f"{path}: label values {bad.tolist()[:8]} are outside 0..{data.num_classes - 1} and are not "
            f"ignore_index {data.ignore_index} (map them with data.label_map)"
        )
    return label


def _palette_to_ids(path: Path, label: np.ndarray, data) -> np.ndarray:
    if label.ndim != 3:
        raise DataError(f"{path}: data.palette is set, so an RGB label was expected. Received: a single-channel image")
    rgb = cv2.cvtColor(label[..., :3], cv2.COLOR_BGR2RGB).astype(np.int32)
    codes = (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]
    ids = np.full(codes.shape, data.ignore_index, np.uint8)
    known = np.zeros(codes.shape, bool)
    for class_id, (r, g, b) in enumerate(data.palette):
        match = codes == ((r << 16) | (g << 8) | b)
        ids[match], known[match] = class_id, True
    if not known.all():
        r, g, b = rgb[~known][0]
        raise DataError(f"{path}: color ({r}, {g}, {b}) is not in data.palette")
    return ids


def label_lookup(data) -> np.ndarray | None:
    raw_to_class = data.raw_to_class
    if not raw_to_class:
        return None
    lookup = np.arange(256, dtype=np.uint8)
    for raw_value, class_id in raw_to_class.items():
        lookup[raw_value] = class_id
    return lookup
