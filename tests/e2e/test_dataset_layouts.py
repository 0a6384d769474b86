"""Public dataset layouts as they come, each generated tiny and taken through `export`: Pascal VOC
(palette PNGs and split lists), Cityscapes (label ids mapped to train ids), ADE20K (zero label
ignored, names from objectInfo150.txt) and an image/mask folder pair without a split (0/255 masks
at half their image's resolution, val taken by `val_fraction`)."""

import json

import numpy as np
import pytest
from PIL import Image

import edgeseg
from edgeseg.errors import DataError, RecipeError
from edgeseg.recipe import parse_recipe
from edgeseg.tflite import TFLiteSegmenter
from tests.helpers import striped_label, tiny_recipe_dict, write_image, write_label

SIZE = (40, 48)  # height, width of the generated images


def write_palette_png(path, ids: np.ndarray):
    path.parent.mkdir(parents=True, exist_ok=True)
    image = Image.fromarray(ids.astype(np.uint8), mode="P")
    image.putpalette([value for index in range(256) for value in (index * 7 % 256, index * 13 % 256, index * 29 % 256)])
    image.save(path)


def voc(root):
    names = {"train": ["2007_000001", "2007_000002", "2007_000003", "2007_000004"], "val": ["2007_000005", "2007_000006"]}
    for split, split_names in names.items():
        for index, name in enumerate(split_names):
            write_image(root / "JPEGImages" / f"{name}.jpg", seed=index)
            ids = striped_label(4, *SIZE) * 5  # classes 0, 5, 10, 15 of VOC's 21
            ids[:, 20] = 255  # VOC's object border, ignored
            write_palette_png(root / "SegmentationClass" / f"{name}.png", ids)
        (root / "ImageSets" / "Segmentation").mkdir(parents=True, exist_ok=True)
        (root / "ImageSets" / "Segmentation" / f"{split}.txt").write_text("\n".join(split_names) + "\n")
    write_image(root / "JPEGImages" / "2007_000099.jpg")  # in no list: not part of any split
    return {"layout": "voc"}, 21


def cityscapes(root):
    for split, city in (("train", "aachen"), ("val", "frankfurt")):
        for index in range(4 if split == "train" else 2):
            name = f"{city}_000000_{index:06d}"
            write_image(root / "leftImg8bit" / split / city / f"{name}_leftImg8bit.png", seed=index)
            ids = np.array([7, 8, 26, 0])[striped_label(4, *SIZE)]  # road, sidewalk, car, unlabeled (ignored)
            write_label(root / "gtFine" / split / city / f"{name}_gtFine_labelIds.png", ids.astype(np.uint8))
            write_label(root / "gtFine" / split / city / f"{name}_gtFine_color.png", np.zeros((*SIZE, 3), np.uint8))
    return {"layout": "cityscapes"}, 19


def ade20k(root):
    for split, folder in (("train", "training"), ("val", "validation")):
        for index in range(4 if split == "train" else 2):
            name = f"ADE_{split}_{index:08d}"
            write_image(root / "images" / folder / f"{name}.jpg", seed=index)
            write_label(root / "annotations" / folder / f"{name}.png", striped_label(4, *SIZE))  # 0 is "other", ignored
    rows = [f"{index}\t0.01\t100\t10\tclass{index};synonym" for index in range(1, 151)]
    (root / "objectInfo150.txt").write_text("Idx\tRatio\tTrain\tVal\tName\n" + "\n".join(rows) + "\n")
    return {"layout": "ade20k"}, 150


def mask_pairs(root):
    """Person-style masks, 0/255, stored at half their image's size, no split."""
    for index in range(10):
        write_image(root / "images" / f"photo{index}.jpg", rgb=None, seed=index)
        mask = (striped_label(2, SIZE[0] // 2, SIZE[1] // 2) * 255).astype(np.uint8)
        write_label(root / "masks" / f"photo{index}.png", mask)
    return {
        "train": {"images": "images", "labels": "masks"},
        "val_fraction": 0.3,
        "classes": ["background", "person"],
        "label_map": {255: 1},
    }, 2


# Each layout trains through export (about 70 s each in CI); the image/mask pairs (the layout with no
# split, masks at another size) in .ci/run's `ci` tier, the others with `-m slow`; every layout's
# reading is checked by default below.
LAYOUTS = [
    *(pytest.param(make, marks=pytest.mark.slow) for make in (voc, cityscapes, ade20k)),
    pytest.param(mask_pairs, marks=pytest.mark.ci),
]


@pytest.mark.parametrize("make", LAYOUTS)
def test_a_layout_trains_and_scores_through_export(tmp_path, make):
    root = tmp_path / "dataset"
    options, num_classes = make(root)
    recipe = tiny_recipe_dict(
        name=make.__name__,
        data={"format": "folder", "root": str(root), "input_size": [32, 32], "batch_size": 2, "augment": None, **options},
        stages=[
            {"train": {"epochs": 1}},
            {"quantize": {"calibration_images": 4}},
            {"verify": {"gallery_images": 0}},
            {"export": {}},
        ],
    )
    del recipe["student"]
    result = edgeseg.run(parse_recipe(recipe), runs_dir=tmp_path / "runs")
    verify = result.record("verify")
    assert 0 <= verify["quantized"]["miou"] <= 1 and verify["quantized"]["images"] >= 1
    description = json.loads((result.run_dir / "edgeseg.json").read_text())
    assert len(description["classes"]) == num_classes
    assert TFLiteSegmenter(result.model_path).output["shape"][-1] == num_classes


def test_the_layouts_read_labels_as_their_datasets_mean_them(tmp_path):
    from edgeseg.data import load_split
    from edgeseg.recipe import parse_data

    def loaded(make):
        root = tmp_path / make.__name__
        options, _ = make(root)
        data = parse_data({"format": "folder", "root": str(root), "input_size": [32, 32], **options})
        return data, load_split(data, "train", seed=0)

    def values(split) -> set:
        """The class ids of the labels as stored (at their own resolution)."""
        return set(np.unique(np.concatenate([label.ravel() for label in split.native_labels])).tolist())

    data, split = loaded(voc)
    assert len(split) == 4 and data.classes[15] == "person"
    assert values(split) == {0, 5, 10, 15, 255}, "palette indices are the class ids; the border is ignored"
    data, split = loaded(cityscapes)
    assert values(split) == {0, 1, 13, 255} and data.classes[13] == "car"
    data, split = loaded(ade20k)
    assert values(split) == {0, 1, 2, 255} and data.classes[:2] == ["class1", "class2"]
    data, split = loaded(mask_pairs)
    train, val = split, load_split(data, "val", seed=0)
    assert len(train) + len(val) == 10 and len(val) >= 1
    assert values(train) == {0, 1} and train.native_labels[0].shape == SIZE, "masks resized to their images"


def test_bad_layout_inputs_are_one_line_naming_the_file_or_key(tmp_path):
    from edgeseg.data import load_split
    from edgeseg.recipe import parse_data

    root = tmp_path / "pairs"
    mask_pairs(root)
    write_label(root / "masks" / "photo3.png", np.zeros((20, 40), np.uint8))  # another aspect ratio
    data = parse_data(
        {
            "format": "folder",
            "root": str(root),
            "input_size": [32, 32],
            "train": {"images": "images", "labels": "masks"},
            "classes": ["background", "person"],
            "label_map": {255: 1},
        }
    )
    with pytest.raises(DataError, match=r"photo3\.png: label is 40x20 but its image is 48x40, another aspect ratio"):
        load_split(data, "train", seed=0)
    with pytest.raises(RecipeError, match="data.val_fraction takes val from train, so data.val must not be set"):
        parse_data({"format": "folder", "root": str(root), "val": "val", "val_fraction": 0.2, "classes": ["a", "b"]})
    (tmp_path / "ade").mkdir()
    with pytest.raises(RecipeError, match="data.classes is not set"):
        parse_data({"format": "folder", "root": str(tmp_path / "ade"), "layout": "ade20k"})
