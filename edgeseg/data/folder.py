"""Folder datasets: `<root>/<split>/images/*` paired by file stem with `<root>/<split>/labels/*.png`.

Every file is read and checked before training starts, so a bad file fails the run in seconds
with its path, not an hour in.
"""

from pathlib import Path

import cv2
import numpy as np

from edgeseg.data.split import SegmentationSplit
from edgeseg.errors import DataError
from edgeseg.progress import progress

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")
cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)


def load_folder_split(data, split: str) -> SegmentationSplit:
    """Reads, checks and resizes one split of a `format: folder` data section.

    Example:
        >>> val = load_folder_split(recipe.data, "val")
    """
    split_dir = data.root / split
    image_files = _list_files(split_dir / "images", IMAGE_SUFFIXES)
    label_files = _list_files(split_dir / "labels", (".png",))
    _check_pairs(split_dir, image_files, label_files)
    height, width = data.input_size
    lookup = _label_lookup(data)
    images = np.empty((len(image_files), height, width, 3), np.uint8)
    labels = np.empty((len(image_files), height, width), np.uint8)
    native_labels = []
    for index, stem in enumerate(progress(sorted(image_files), desc=f"loading {split}", unit="img")):
        image = _read_image(image_files[stem])
        label = _read_label(label_files[stem], data, lookup)
        if label.shape != image.shape[:2]:
            raise DataError(
                f"{label_files[stem]}: label is {label.shape[1]}x{label.shape[0]} but its image is "
                f"{image.shape[1]}x{image.shape[0]}; expected the same size"
            )
        images[index] = cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)
        labels[index] = cv2.resize(label, (width, height), interpolation=cv2.INTER_NEAREST)
        native_labels.append(label)
    if not (labels != data.ignore_index).any():
        raise DataError(f"{split_dir / 'labels'}: every pixel is ignore_index {data.ignore_index}; nothing to learn or score")
    native = tuple(native_labels) if any(label.shape != (height, width) for label in native_labels) else None
    return SegmentationSplit(split, images, labels, data.ignore_index, native)


def load_unlabeled_images(folder: Path, input_size: tuple[int, int]) -> np.ndarray:
    """Every image in `folder` (`data.unlabeled`), checked and resized to `input_size` like a split's.

    Example:
        >>> images = load_unlabeled_images(recipe.data.unlabeled, recipe.data.input_size)
    """
    files = _list_files(folder, IMAGE_SUFFIXES)
    if not files:
        raise DataError(f"{folder}: no images ({', '.join(IMAGE_SUFFIXES)}) in data.unlabeled")
    height, width = input_size
    images = np.empty((len(files), height, width, 3), np.uint8)
    for index, stem in enumerate(progress(sorted(files), desc="loading unlabeled", unit="img")):
        images[index] = cv2.resize(_read_image(files[stem]), (width, height), interpolation=cv2.INTER_AREA)
    return images


def _list_files(folder: Path, suffixes: tuple[str, ...]) -> dict[str, Path]:
    if not folder.is_dir():
        raise DataError(f"{folder}: folder not found; expected <root>/<split>/images and <root>/<split>/labels")
    files: dict[str, Path] = {}
    try:
        entries = sorted(folder.iterdir())
    except OSError as error:
        raise DataError(f"{folder}: cannot list the folder: {error.strerror}") from None
    for path in entries:
        if path.suffix.lower() in suffixes and not path.is_file() and path.is_symlink():
            raise DataError(f"{path}: a broken or looping symbolic link")
        if path.suffix.lower() in suffixes and path.is_file():
            if path.stem in files:
                raise DataError(f"{path}: two files share the stem '{path.stem}' ({files[path.stem].name})")
            files[path.stem] = path
    return files


def _check_pairs(split_dir: Path, image_files: dict, label_files: dict) -> None:
    if not image_files:
        raise DataError(f"{split_dir / 'images'}: no images ({', '.join(IMAGE_SUFFIXES)}); the split is empty")
    for stem in sorted(image_files.keys() - label_files.keys()):
        raise DataError(f"{image_files[stem]}: image has no label; expected {split_dir / 'labels' / stem}.png")
    for stem in sorted(label_files.keys() - image_files.keys()):
        raise DataError(f"{label_files[stem]}: label has no image in {split_dir / 'images'}")


def _decode(path: Path, flags: int) -> np.ndarray:
    try:
        data = path.read_bytes()
    except OSError as error:
        raise DataError(f"{path}: cannot read: {error.strerror}") from None
    if data[:2] == b"\xff\xd8" and b"\xff\xd9" not in data[-64:]:
        raise DataError(f"{path}: truncated JPEG (no end-of-image marker)")
    decoded = cv2.imdecode(np.frombuffer(data, np.uint8), flags) if data else None
    if decoded is None:
        raise DataError(f"{path}: not a readable image (corrupt or unsupported format)")
    return decoded


def _read_image(path: Path) -> np.ndarray:
    image = _decode(path, cv2.IMREAD_COLOR)
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def _read_label(path: Path, data, lookup: np.ndarray | None) -> np.ndarray:
    label = _decode(path, cv2.IMREAD_UNCHANGED)
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


def _label_lookup(data) -> np.ndarray | None:
    if not data.label_map:
        return None
    lookup = np.arange(256, dtype=np.uint8)
    for raw_value, class_id in data.label_map.items():
        lookup[raw_value] = class_id
    return lookup
