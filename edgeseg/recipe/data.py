"""The `data:` section: procedural scenes, or a folder dataset on disk."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from edgeseg.data.layouts import LAYOUTS
from edgeseg.recipe.base import Section, resolve_folder, resolve_path, short

# Every zoo model's default output stride; a model at output_stride 32 asks for multiples of 32
# (checked against the recipe's models in edgeseg.recipe.root).
INPUT_SIDE_MULTIPLE = 16


class AugmentConfig(Section):
    """Training-time augmentation; validation data is never augmented."""

    hflip: bool = True
    scale: tuple[float, float] = Field((0.75, 1.5), description="random zoom range [low, high]")
    brightness: float = Field(0.1, ge=0, le=1, description="max brightness shift, fraction of 255")
    contrast: float = Field(0.1, ge=0, lt=1, description="max contrast change, fraction")

    @field_validator("scale")
    @classmethod
    def _ordered_scale(cls, scale: tuple[float, float]) -> tuple[float, float]:
        if not 0 < scale[0] <= scale[1]:
            raise ValueError(f"expected 0 < low <= high. Received: scale={list(scale)}")
        return scale


def checked_input_size(size: tuple[int, int]) -> tuple[int, int]:
    """`size` if every side is >= 32 and a multiple of 16, else ValueError."""
    if any(side < 32 or side % INPUT_SIDE_MULTIPLE for side in size):
        raise ValueError(
            f"each side must be >= 32 and a multiple of {INPUT_SIDE_MULTIPLE} (the zoo models' default "
            f"output stride; output_stride 32 needs multiples of 32). Received: input_size={list(size)}"
        )
    return size


class _DataCommon(Section):
    input_size: tuple[int, int] = Field((64, 64), description="model input [height, width]")
    batch_size: int = Field(16, ge=1)
    augment: AugmentConfig | None = AugmentConfig()
    unlabeled: Path | None = Field(
        None,
        description="a folder of images without labels; `distill` adds them to its training images, where "
        "the student learns from the teacher's logits alone",
    )

    @field_validator("unlabeled")
    @classmethod
    def _resolve_unlabeled(cls, folder: Path | None, info: ValidationInfo) -> Path | None:
        return None if folder is None else resolve_folder(folder, info)

    @field_validator("input_size")
    @classmethod
    def _divisible_size(cls, size: tuple[int, int]) -> tuple[int, int]:
        return checked_input_size(size)


class SyntheticData(_DataCommon):
    """Procedural scenes, generated from the seed: no files needed."""

    format: Literal["synthetic"]
    num_classes: int = Field(4, ge=4, le=6)
    num_train: int = Field(384, ge=8)
    num_val: int = Field(96, ge=4)

    @property
    def classes(self) -> list[str]:
        from edgeseg.data.synthetic import SYNTHETIC_CLASS_NAMES

        return list(SYNTHETIC_CLASS_NAMES[: self.num_classes])

    @property
    def ignore_index(self) -> int:
        return 255

    palette: ClassVar[None] = None
    label_map: ClassVar[None] = None


class SplitSpec(Section):
    """Where one split's images and labels are, relative to `data.root`. An image and a label pair
    when their file names agree once their suffixes are taken off (`aachen_000000_000019` in
    `aachen_000000_000019_leftImg8bit.png` and `aachen_000000_000019_gtFine_labelIds.png`)."""

    images: str | list[str] = Field(
        description="folders or glob patterns of image files, e.g. train/images or [train/images/0001TP*, val/images]"
    )
    labels: str | list[str] = Field(description="folders or glob patterns of label files")
    image_suffix: str | None = Field(
        None,
        description="the end of an image's file name after the name it shares with "
        "its label, e.g. _leftImg8bit.png; default: its extension",
    )
    label_suffix: str = Field(
        ".png", description="the end of a label's file name after the shared name, e.g. _gtFine_labelIds.png"
    )
    list_file: Path | None = Field(
        None,
        description="a text file naming the split's pairs, one shared name per line "
        "(as VOC's ImageSets/Segmentation/train.txt); relative to the recipe",
    )

    @field_validator("images", "labels")
    @classmethod
    def _some_patterns(cls, patterns: str | list[str]) -> str | list[str]:
        if not patterns:
            raise ValueError("expected a folder or glob pattern, or a list of them. Received: an empty value")
        return patterns

    @field_validator("list_file")
    @classmethod
    def _resolve_list_file(cls, path: Path | None, info: ValidationInfo) -> Path | None:
        if path is None:
            return None
        resolved = resolve_path(path, info)
        if not resolved.is_file():
            raise ValueError(f"file not found: {resolved}. Received: list_file={str(path)!r}")
        return resolved

    @property
    def patterns(self) -> tuple[list[str], list[str]]:
        """(image patterns, label patterns), each as a list."""
        as_list = lambda value: [value] if isinstance(value, str) else list(value)
        return as_list(self.images), as_list(self.labels)

    @property
    def plain_folders(self) -> bool:
        """One folder of images and one of labels that hold exactly the split: every label needs its image."""
        images, labels = self.patterns
        return (
            len(images) == len(labels) == 1
            and self.list_file is None
            and not any(any(char in pattern for char in "*?[") for pattern in images + labels)
        )


class FolderData(_DataCommon):
    """A dataset of image files and label PNGs of class ids. Each split is a name the `layout` knows
    where to find (by default `<root>/<split>/images/*` paired by stem with `<root>/<split>/labels/*.png`)
    or a `SplitSpec`."""

    format: Literal["folder"]
    root: Path
    layout: Literal["folders", "voc", "cityscapes", "ade20k"] = Field(
        "folders",
        description="where splits live and what labels mean: edgeseg's folders, Pascal VOC 2012, Cityscapes "
        "(label ids to the 19 train ids), ADE20K (0 ignored, 1..150 to 0..149); edgeseg.data.layouts",
    )
    train: SplitSpec = Field(
        "train",
        validate_default=True,
        description="a split name the layout knows, or {images, labels, image_suffix, label_suffix, list_file}",
    )
    val: SplitSpec = Field("val", validate_default=True, description="as train")
    val_fraction: float | None = Field(
        None,
        gt=0,
        lt=1,
        description="take val from train: this fraction of its pairs, chosen by a hash of each name (the "
        "same pairs whatever else is added), for a dataset without a split; val must not be set",
    )
    classes: list[str] = Field(
        default_factory=list,
        description="class names; default: the layout's classes, else the 'classes' of root/dataset.json",
    )
    ignore_index: int | None = Field(
        None,
        ge=0,
        le=255,
        description="label value to ignore; default: the layout's, else dataset.json's, else 255",
    )
    label_map: dict[int, int] | None = Field(None, description="raw label value -> class id")
    palette: list[tuple[int, int, int]] | None = Field(None, description="RGB color of each class id, for color-coded label PNGs")

    @field_validator("root")
    @classmethod
    def _resolve_root(cls, root: Path, info: ValidationInfo) -> Path:
        return resolve_folder(root, info, "dataset folder")

    @model_validator(mode="after")
    def _classes_and_ignore_index(self) -> FolderData:
        if self.val_fraction is not None and "val" in self.model_fields_set:
            raise ValueError(
                f"data.val_fraction takes val from train, so data.val must not be set. "
                f"Received: val_fraction={self.val_fraction}, val={self.val.images!r}"
            )
        layout = LAYOUTS[self.layout]
        if not self.classes:
            self.classes = layout.class_names(self.root) or []
        if self.ignore_index is None:
            self.ignore_index = layout.ignore_index
        manifest_path = self.root / "dataset.json"
        manifest: dict[str, Any] = {}
        if manifest_path.is_file() and (not self.classes or self.ignore_index is None):
            try:
                manifest = json.loads(manifest_path.read_text())
            except (OSError, ValueError) as error:
                raise ValueError(f"cannot read {manifest_path}: {error}") from None
            if not isinstance(manifest, dict):
                raise ValueError(f"{manifest_path}: expected a JSON object. Received: {short(manifest)}")
        if not self.classes:
            if not isinstance(manifest.get("classes"), list):
                raise ValueError(
                    f"data.classes is not set and {manifest_path} has no 'classes' list; name the classes in the recipe"
                )
            self.classes = [str(name) for name in manifest["classes"]]
        if self.ignore_index is None:
            self.ignore_index = manifest.get("ignore_index", 255)
            if type(self.ignore_index) is not int or not 0 <= self.ignore_index <= 255:
                raise ValueError(f"{manifest_path}: ignore_index must be an integer 0..255. Received: {short(self.ignore_index)}")
        num_classes = len(self.classes)
        if num_classes < 2:
            raise ValueError(f"data.classes needs at least 2 classes. Received: classes={self.classes}")
        if 0 <= self.ignore_index < num_classes:
            raise ValueError(
                f"data.ignore_index must not be a class id (0..{num_classes - 1}). Received: ignore_index={self.ignore_index}"
            )
        if self.palette is not None and len(self.palette) != num_classes:
            raise ValueError(f"data.palette needs one color per class ({num_classes}). Received: {len(self.palette)} colors")
        if self.palette is not None and self.label_map is not None:
            raise ValueError("data.palette and data.label_map are exclusive: set one of them")
        for raw_value, class_id in (self.label_map or {}).items():
            if not 0 <= raw_value <= 255:
                raise ValueError(f"data.label_map keys are 8-bit label values 0..255. Received: {raw_value}")
            if not (0 <= class_id < num_classes or class_id == self.ignore_index):
                raise ValueError(
                    f"data.label_map[{raw_value}] must be a class id 0..{num_classes - 1} or "
                    f"ignore_index {self.ignore_index}. Received: {class_id}"
                )
        return self

    @field_validator("train", "val", mode="before")
    @classmethod
    def _named_split(cls, split: Any, info: ValidationInfo) -> Any:
        """A split name is where the layout keeps that split (`folders`: `{images: x/images, labels: x/labels}`)."""
        if not isinstance(split, str):
            return split
        if "root" not in info.data:  # the root failed its own check: that is the one error to show
            return {"images": split, "labels": split}
        return LAYOUTS[info.data.get("layout", "folders")].split(split, info.data["root"])

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def raw_to_class(self) -> dict[int, int] | None:
        """Label value -> class id: `label_map`, or else the layout's (Cityscapes' train ids, ADE20K's
        reduce-zero-label)."""
        return self.label_map if self.label_map is not None else LAYOUTS[self.layout].label_map

    def split(self, name: str) -> SplitSpec:
        """The split called `name`: the recipe's `train` or `val`, or any other split the layout knows
        (`folders`: `<root>/<name>/images` and `<root>/<name>/labels`), e.g. a held-out test set for `eval`."""
        if name in ("train", "val"):
            return getattr(self, name)
        return SplitSpec.model_validate(LAYOUTS[self.layout].split(name, self.root))


DataConfig = Annotated[SyntheticData | FolderData, Field(discriminator="format")]
