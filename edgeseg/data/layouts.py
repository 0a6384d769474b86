"""Public datasets as they come: where a layout keeps each split's images and labels, its classes,
and how its label values map to class ids. `data.layout` in a recipe picks one; a split may still be
spelled out as a `SplitSpec` (folders, globs, name suffixes, a list file), which any layout accepts.

    folders     <root>/<split>/images/* and <root>/<split>/labels/<name>.png (edgeseg's own, CamVid as shipped here)
    voc         Pascal VOC 2012: JPEGImages/*.jpg, SegmentationClass/*.png (palette PNGs, 255 = border, ignored),
                the split's names in ImageSets/Segmentation/<split>.txt; 21 classes
    cityscapes  leftImg8bit/<split>/<city>/*_leftImg8bit.png with gtFine/<split>/<city>/*_gtFine_labelIds.png;
                label ids mapped to the 19 train ids, every other id ignored
    ade20k      ADEChallengeData2016: images/{training,validation}/*.jpg, annotations/.../*.png; 0 ("other") is
                ignored and ids 1..150 become 0..149 (reduce-zero-label); class names from objectInfo150.txt

An image-and-mask dataset without a split (masks in one folder, images in another) is the `folders`
layout with `train: {images: ..., labels: ...}` and `val_fraction`.
"""

from dataclasses import dataclass, field
from pathlib import Path

VOC_CLASSES = (
    "background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow", "diningtable",
    "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train", "tvmonitor",
)  # fmt: skip
# Cityscapes' label ids of the 19 classes it evaluates, in train-id order.
CITYSCAPES_TRAIN_IDS = {
    7: "road", 8: "sidewalk", 11: "building", 12: "wall", 13: "fence", 17: "pole", 19: "traffic light",
    20: "traffic sign", 21: "vegetation", 22: "terrain", 23: "sky", 24: "person", 25: "rider", 26: "car", 27: "truck",
    28: "bus", 31: "train", 32: "motorcycle", 33: "bicycle",
}  # fmt: skip
ADE20K_CLASS_COUNT = 150
IGNORED = 255


@dataclass(frozen=True)
class Layout:
    """Where a layout keeps a split, and the defaults it gives `data.classes`, `ignore_index` and `label_map`."""

    name: str
    folders: dict = field(default_factory=dict)
    """split name -> (images, labels, image_suffix, label_suffix), paths relative to root."""
    list_files: str | None = None
    """A split's list of names, relative to root, with `{split}` for its name."""
    classes: tuple[str, ...] | None = None
    label_map: dict[int, int] | None = None
    ignore_index: int | None = None

    def split(self, name: str, root: Path) -> dict:
        """The `SplitSpec` fields of split `name` (train, val, or another folder name)."""
        images, labels, image_suffix, label_suffix = self.folders.get(name) or self.folders["*"](name)
        spec = {"images": images, "labels": labels, "image_suffix": image_suffix, "label_suffix": label_suffix}
        if self.list_files is not None:
            spec["list_file"] = str(root / self.list_files.format(split=name))
        return spec

    def class_names(self, root: Path) -> list[str] | None:
        """The layout's class names; for ADE20K, read from the dataset's objectInfo150 file."""
        if self.name == "ade20k":
            return ade20k_class_names(root)
        return list(self.classes) if self.classes else None


def _folders_split(name: str) -> tuple:
    return f"{name}/images", f"{name}/labels", None, ".png"


def _cityscapes_split(name: str) -> tuple:
    return (
        f"leftImg8bit/{name}/*/*_leftImg8bit.png",
        f"gtFine/{name}/*/*_gtFine_labelIds.png",
        "_leftImg8bit.png",
        "_gtFine_labelIds.png",
    )


def _ade20k_split(name: str) -> tuple:
    folder = {"train": "training", "val": "validation"}.get(name, name)
    return f"images/{folder}", f"annotations/{folder}", ".jpg", ".png"


LAYOUTS = {
    "folders": Layout("folders", {"*": _folders_split}),
    "voc": Layout(
        "voc",
        {"*": lambda name: ("JPEGImages", "SegmentationClass", ".jpg", ".png")},
        list_files="ImageSets/Segmentation/{split}.txt",
        classes=VOC_CLASSES,
        ignore_index=IGNORED,
    ),
    "cityscapes": Layout(
        "cityscapes",
        {"*": _cityscapes_split},
        classes=tuple(CITYSCAPES_TRAIN_IDS.values()),
        ignore_index=IGNORED,
        label_map={raw: list(CITYSCAPES_TRAIN_IDS).index(raw) if raw in CITYSCAPES_TRAIN_IDS else IGNORED for raw in range(256)},
    ),
    "ade20k": Layout(
        "ade20k",
        {"*": _ade20k_split},
        ignore_index=IGNORED,
        label_map={0: IGNORED, **{raw: raw - 1 for raw in range(1, ADE20K_CLASS_COUNT + 1)}},
    ),
}


def ade20k_class_names(root: Path) -> list[str] | None:
    """The 150 names in ADEChallengeData2016's objectInfo150.txt or .csv (its last column; the
    first synonym of each), or None when neither file is there."""
    for name in ("objectInfo150.txt", "objectInfo150.csv"):
        path = root / name
        if not path.is_file():
            continue
        rows = [line.replace(",", "\t").split("\t") for line in path.read_text(errors="replace").splitlines()[1:] if line.strip()]
        names = [row[-1].strip().strip('"').split(";")[0].strip() for row in rows]
        if len(names) != ADE20K_CLASS_COUNT:
            raise ValueError(f"{path}: expected {ADE20K_CLASS_COUNT} classes. Received: {len(names)}")
        return names
    return None
