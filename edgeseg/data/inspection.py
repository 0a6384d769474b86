"""A look at a dataset before anyone trains on it: what `edgeseg check` reads (the pairs of every split
and each file's size from its header: missing labels, empty splits, sizes that cannot be matched,
files over the size limit) and what `edgeseg data` adds (every label decoded: class pixel shares,
classes missing from a split, a gallery of label overlays).

Example::

    report = inspect_data(recipe.data, decode=True)
    report["splits"]["val"]["classes_missing"]
"""

from collections import Counter
from pathlib import Path

import numpy as np
from PIL import Image

from edgeseg.data.folder import label_at_image_size, label_lookup, read_class_ids, split_files
from edgeseg.errors import DataError
from edgeseg.images import MAX_IMAGE_PIXELS
from edgeseg.progress import progress

GALLERY_IMAGES = 4
"""Overlays per split in the gallery, evenly spaced through the split."""


def inspect_data(data, decode: bool = False) -> dict:
    """Per split (train and val): pairs, image sizes, and the labels whose size differs from their
    image's (resized when their aspect ratio matches, else an error naming the file). With `decode`,
    also each class's share of the labeled pixels and the classes a split lacks."""
    splits = {split: _inspect_split(data, split, decode) for split in ("train", "val")}
    return {"format": data.format, "classes": list(data.classes), "input_size": list(data.input_size), "splits": splits}


def _inspect_split(data, split: str, decode: bool) -> dict:
    if data.format == "synthetic":
        count = data.num_train if split == "train" else data.num_val
        report = {"pairs": count, "image_sizes": {_size_text(data.input_size): count}, "labels_resized": 0}
        if decode:
            from edgeseg.data import load_split

            report.update(_class_shares(load_split(data, split, seed=0).labels, data))
        return report
    pairs = split_files(data, split)
    sizes: Counter = Counter()
    resized = []
    for image_path, label_path in progress(pairs, desc=f"reading {split}", unit="pair"):
        image_size, label_size = _header_size(image_path), _header_size(label_path)
        sizes[_size_text(image_size)] += 1
        if label_size != image_size:
            label_at_image_size(np.zeros(label_size, np.uint8), image_size, label_path)  # one line if it cannot be
            resized.append(str(label_path))
    report = {
        "pairs": len(pairs),
        "image_sizes": dict(sizes.most_common()),
        "labels_resized": len(resized),
        "labels_resized_examples": resized[:5],
    }
    if decode:
        lookup = label_lookup(data)
        counts = np.zeros(256, np.int64)
        for _, label_path in progress(pairs, desc=f"counting {split} classes", unit="label"):
            counts += np.bincount(read_class_ids(label_path, data, lookup).ravel(), minlength=256)
        report.update(_shares_of(counts, data))
    return report


def _class_shares(labels: np.ndarray, data) -> dict:
    return _shares_of(np.bincount(labels.ravel(), minlength=256), data)


def _shares_of(counts: np.ndarray, data) -> dict:
    labeled = counts[: len(data.classes)].sum()
    shares = {name: float(counts[index] / labeled) if labeled else 0.0 for index, name in enumerate(data.classes)}
    return {
        "class_pixel_shares": shares,
        "ignored_pixel_share": float(counts[data.ignore_index] / max(1, counts.sum())),
        "classes_missing": [name for name, share in shares.items() if share == 0],
    }


def _header_size(path: Path) -> tuple[int, int]:
    """(height, width) read from the file's header alone."""
    try:
        with Image.open(path) as image:
            width, height = image.size
    except (OSError, ValueError, Image.DecompressionBombError):
        raise DataError(f"{path}: not a readable image (corrupt or unsupported format)") from None
    if width * height > MAX_IMAGE_PIXELS:
        raise DataError(f"{path}: {width}x{height} pixels is more than edgeseg reads ({MAX_IMAGE_PIXELS:,}); resize it first")
    return height, width


def _size_text(size) -> str:
    return f"{size[1]}x{size[0]}"


def data_lines(report: dict) -> list[str]:
    """The report as lines for a terminal, and for data.md."""
    lines = [f"{report['format']} data, {len(report['classes'])} classes, model input {_size_text(report['input_size'])}"]
    for split, found in report["splits"].items():
        sizes = ", ".join(f"{size} ({count})" for size, count in list(found["image_sizes"].items())[:3])
        more = f", {len(found['image_sizes']) - 3} more sizes" if len(found["image_sizes"]) > 3 else ""
        lines.append(f"{split}: {found['pairs']} images; sizes {sizes}{more}")
        if found["labels_resized"]:
            lines.append(
                f"  {found['labels_resized']} labels of another size than their image, same shape: resized "
                f"to it (nearest) when loaded, e.g. {found['labels_resized_examples'][0]}"
            )
        if "class_pixel_shares" in found:
            shares = ", ".join(f"{name} {share:.1%}" for name, share in found["class_pixel_shares"].items())
            lines.append(f"  class pixel shares: {shares}; ignored {found['ignored_pixel_share']:.1%}")
            if found["classes_missing"]:
                lines.append(f"  classes with no pixel in {split}: {', '.join(found['classes_missing'])}")
    return lines


def write_data_report(data, folder: Path) -> dict:
    """`inspect_data(decode=True)` written to `folder`: data.json, data.md and gallery.png (label
    overlays of a few images of each split); returns the report."""
    from edgeseg.data import load_split
    from edgeseg.files import write_json_atomic, write_text_atomic
    from edgeseg.overlay import class_colors
    from edgeseg.plots import plot_gallery

    report = inspect_data(data, decode=True)
    splits = {split: load_split(data, split, seed=0) for split in ("train", "val")}
    picks = {
        split: np.unique(np.linspace(0, len(loaded) - 1, GALLERY_IMAGES).round().astype(int)) for split, loaded in splits.items()
    }
    images = np.concatenate([splits[split].images[picks[split]] for split in splits])
    labels = np.concatenate([splits[split].labels[picks[split]] for split in splits])
    colors = class_colors(len(data.classes), getattr(data, "palette", None))
    plot_gallery(images, [("image", None), ("label", labels)], colors, data.ignore_index, folder / "gallery.png")
    report["gallery"] = "gallery.png"
    write_json_atomic(folder / "data.json", report)
    write_text_atomic(
        folder / "data.md",
        "# Data\n\n"
        + "\n".join(f"- {line}" for line in data_lines(report))
        + "\n\n![label overlays, train then val](gallery.png)\n",
    )
    return report
