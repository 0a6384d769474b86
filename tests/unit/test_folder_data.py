"""Folder datasets: every bad file is a DataError naming its path; good ones load at the input size."""

import numpy as np
import pytest

from edgeseg.data import load_split
from edgeseg.errors import DataError, EdgesegError
from edgeseg.recipe import parse_data
from tests.helpers import (
    IMAGE_HEIGHT,
    IMAGE_WIDTH,
    make_split,
    striped_label,
    write_image,
    write_label,
    write_manifest,
)

CLASSES = ["background", "road", "car"]


def folder_data(root, **options):
    return parse_data({"format": "folder", "root": str(root), "classes": CLASSES, "input_size": [32, 32], **options})


def load_error(root, split="train", **options) -> str:
    data = folder_data(root, **options)
    with pytest.raises(DataError) as caught:
        load_split(data, split, seed=0)
    return str(caught.value)


@pytest.fixture
def root(tmp_path):
    """A good train split of three images (a, b, c) in tmp_path/ds."""
    make_split(tmp_path / "ds", "train", ["a", "b", "c"], num_classes=len(CLASSES))
    return (tmp_path / "ds").resolve()


# ----------------------------------------------------------------------------- good datasets


def test_good_dataset_loads(root):
    split = load_split(folder_data(root), "train", seed=0)
    assert len(split) == 3
    assert split.images.shape == (3, 32, 32, 3) and split.images.dtype == np.uint8
    assert split.labels.shape == (3, 32, 32) and split.labels.dtype == np.uint8
    assert split.ignore_index == 255
    assert set(np.unique(split.labels)) == {0, 1, 2}
    # nearest-neighbour resizing keeps the bands: left edge class 0, right edge class 2, ids non-decreasing
    assert (split.labels[:, :, 0] == 0).all() and (split.labels[:, :, -1] == 2).all()
    assert (np.diff(split.labels.astype(int), axis=2) >= 0).all()


def test_images_are_rgb_sorted_by_stem_and_labels_keep_ignore(tmp_path):
    root = tmp_path / "ds"
    colors = {"b": (200, 30, 10), "a": (10, 180, 60)}  # written in reverse order, read sorted by stem
    for stem, color in colors.items():
        write_image(root / "train" / "images" / f"{stem}.png", np.full((IMAGE_HEIGHT, IMAGE_WIDTH, 3), color, np.uint8))
        label = striped_label(len(CLASSES))
        label[:10] = 255  # the top quarter is ignored
        write_label(root / "train" / "labels" / f"{stem}.png", label)
    split = load_split(folder_data(root), "train", seed=0)
    assert split.images[0, 16, 16].tolist() == [10, 180, 60]
    assert split.images[1, 16, 16].tolist() == [200, 30, 10]
    assert set(np.unique(split.labels)) == {0, 1, 2, 255}
    assert (split.labels[:, :6] == 255).all() and (split.labels[:, 10:] != 255).all()


def test_a_split_is_selected_by_globs_over_several_folders_without_copying_files(tmp_path):
    """CamVid-style: a held-out sequence as val, the rest of both released splits as train."""
    root = tmp_path / "ds"
    make_split(root, "train", ["seqA_1", "seqA_2", "seqB_1"], num_classes=len(CLASSES))
    make_split(root, "val", ["seqA_3"], num_classes=len(CLASSES))
    train = {"images": ["train/images/seqA_*", "val/images"], "labels": ["train/labels", "val/labels"]}
    val = {"images": "train/images/seqB_*", "labels": "train/labels"}
    data = folder_data(root, train=train, val=val)
    assert len(load_split(data, "train", seed=0)) == 3 and len(load_split(data, "val", seed=0)) == 1
    from edgeseg.data.folder import split_pairs

    assert [image.name for image, _ in split_pairs(root.resolve(), data.train, "data.train")] == [
        "seqA_1.png",
        "seqA_2.png",
        "seqA_3.png",
    ]


def test_a_split_by_list_file_and_name_suffixes(tmp_path):
    """Cityscapes-style names (a shared prefix, then a suffix per kind), and a VOC-style list of names."""
    root = tmp_path / "ds"
    for name in ("city_1", "city_2", "city_3"):
        write_image(root / "img" / f"{name}_leftImg8bit.png")
        write_label(root / "gt" / f"{name}_gtFine_labelIds.png", striped_label(len(CLASSES)))
        write_label(root / "gt" / f"{name}_gtFine_color.png", np.zeros((IMAGE_HEIGHT, IMAGE_WIDTH, 3), np.uint8))
    (tmp_path / "train.txt").write_text("city_3\ncity_1\n\n")
    spec = {
        "images": "img",
        "labels": "gt/*_labelIds.png",
        "image_suffix": "_leftImg8bit.png",
        "label_suffix": "_gtFine_labelIds.png",
        "list_file": str(tmp_path / "train.txt"),
    }
    from edgeseg.data.folder import split_pairs

    data = folder_data(root, train=spec)
    pairs = split_pairs(root.resolve(), data.train, "data.train")
    assert [(image.name, label.name) for image, label in pairs] == [
        ("city_1_leftImg8bit.png", "city_1_gtFine_labelIds.png"),
        ("city_3_leftImg8bit.png", "city_3_gtFine_labelIds.png"),
    ]
    assert len(load_split(data, "train", seed=0)) == 2


@pytest.mark.parametrize(
    ("spec", "fragments"),
    [
        ({"images": "train/images/zz*", "labels": "train/labels"}, ["data.train.images", "no file matches it"]),
        ({"images": "train/images", "labels": "train/labels", "list_file": "LIST"}, ["lists 'd'", "no such image"]),
        ({"images": "train/images", "labels": []}, ["train.labels", "expected a folder or glob pattern"]),
    ],
)
def test_a_bad_split_spec_is_one_line_naming_the_key(root, tmp_path, spec, fragments):
    (tmp_path / "list.txt").write_text("a\nd\n")
    spec = {key: str(tmp_path / "list.txt") if value == "LIST" else value for key, value in spec.items()}
    with pytest.raises(EdgesegError) as caught:  # from the recipe's validation or from loading the split
        load_split(folder_data(root, train=spec), "train", seed=0)
    message = str(caught.value)
    assert "\n" not in message and all(fragment in message for fragment in fragments), message


def test_resizing_never_blends_label_ids(tmp_path):
    root = tmp_path / "ds"
    label = np.where(np.arange(IMAGE_WIDTH) % 2 == 0, 2, 255).astype(np.uint8)[None].repeat(IMAGE_HEIGHT, axis=0)
    label[::3] = 0  # every third row is class 0: rows and columns alternate at pixel scale
    write_image(root / "train" / "images" / "a.png")
    write_label(root / "train" / "labels" / "a.png", label)
    labels = load_split(folder_data(root), "train", seed=0).labels
    assert set(np.unique(labels).tolist()) == {0, 2, 255}


def test_jpeg_images_load(tmp_path):
    root = tmp_path / "ds"
    make_split(root, "train", ["a", "b"], image_suffix=".jpg")
    split = load_split(folder_data(root), "train", seed=0)
    assert split.images.shape == (2, 32, 32, 3)


def write_binary_mask_dataset(root):
    """One image whose label is 0 on the left half and 255 on the right, as binary masks are stored."""
    mask = np.zeros((IMAGE_HEIGHT, IMAGE_WIDTH), np.uint8)
    mask[:, IMAGE_WIDTH // 2 :] = 255
    write_image(root / "train" / "images" / "a.png")
    write_label(root / "train" / "labels" / "a.png", mask)


def test_label_map_turns_a_255_mask_into_ids(tmp_path):
    root = tmp_path / "ds"
    write_binary_mask_dataset(root)
    data = parse_data(
        {
            "format": "folder",
            "root": str(root),
            "classes": ["background", "object"],
            "input_size": [32, 32],
            "label_map": {255: 1},
        }
    )
    labels = load_split(data, "train", seed=0).labels
    assert set(np.unique(labels)) == {0, 1}
    assert (labels[0, :, :16] == 0).all() and (labels[0, :, 16:] == 1).all()


def test_without_label_map_a_255_mask_is_ignore(tmp_path):
    root = tmp_path / "ds"
    write_binary_mask_dataset(root)
    data = parse_data({"format": "folder", "root": str(root), "classes": ["background", "object"], "input_size": [32, 32]})
    assert set(np.unique(load_split(data, "train", seed=0).labels)) == {0, 255}


PALETTE = [(0, 0, 0), (128, 64, 128), (0, 0, 142)]  # RGB per class


def color_label(ids: np.ndarray) -> np.ndarray:
    return np.array(PALETTE, np.uint8)[ids]


def test_palette_maps_colors_to_ids(tmp_path):
    root = tmp_path / "ds"
    ids = striped_label(len(CLASSES))
    write_image(root / "train" / "images" / "a.png")
    write_label(root / "train" / "labels" / "a.png", color_label(ids))
    labels = load_split(folder_data(root, palette=[list(c) for c in PALETTE]), "train", seed=0).labels
    assert set(np.unique(labels)) == {0, 1, 2}
    assert (labels[0, :, 0] == 0).all() and (labels[0, :, -1] == 2).all()


def test_palette_unknown_color_names_the_color_and_file(tmp_path):
    root = tmp_path / "ds"
    label = color_label(striped_label(len(CLASSES)))
    label[5, 7] = (1, 2, 3)
    write_image(root / "train" / "images" / "a.png")
    label_path = write_label(root / "train" / "labels" / "a.png", label)
    message = load_error(root, palette=[list(c) for c in PALETTE])
    assert str(label_path.resolve()) in message
    assert "(1, 2, 3)" in message and "data.palette" in message


def test_palette_with_single_channel_label(root):
    message = load_error(root, palette=[list(c) for c in PALETTE])
    assert str(root / "train" / "labels" / "a.png") in message
    assert "single-channel" in message


def test_classes_from_dataset_json(tmp_path):
    root = tmp_path / "ds"
    make_split(root, "val", ["x", "y"], num_classes=4)
    write_manifest(root, classes=["bg", "a", "b", "c"], ignore_index=100)
    data = parse_data({"format": "folder", "root": str(root), "input_size": [32, 32]})
    assert data.classes == ["bg", "a", "b", "c"] and data.num_classes == 4 and data.ignore_index == 100
    split = load_split(data, "val", seed=0)
    assert split.name == "val" and split.ignore_index == 100
    assert set(np.unique(split.labels)) == {0, 1, 2, 3}


def test_custom_split_folder_name(tmp_path):
    root = tmp_path / "ds"
    make_split(root, "training", ["a"])
    data = folder_data(root, train="training")
    assert len(load_split(data, "train", seed=0)) == 1


# ----------------------------------------------------------------------------- bad datasets


def test_image_without_label(root):
    write_image(root / "train" / "images" / "d.png")
    message = load_error(root)
    assert str(root / "train" / "images" / "d.png") in message
    assert "no label" in message and str(root / "train" / "labels" / "d") in message


def test_label_without_image(root):
    write_label(root / "train" / "labels" / "e.png", striped_label(3))
    message = load_error(root)
    assert str(root / "train" / "labels" / "e.png") in message
    assert "no image" in message


def test_two_images_with_one_stem(root):
    write_image(root / "train" / "images" / "a.jpg")
    message = load_error(root)
    assert str(root / "train" / "images") in message and "'a'" in message


def test_corrupt_image(root):
    bad = root / "train" / "images" / "b.jpg"
    (root / "train" / "images" / "b.png").unlink()
    bad.write_bytes(np.random.default_rng(1).integers(0, 256, 500, dtype=np.uint8).tobytes())
    assert not bad.read_bytes().startswith(b"\xff\xd8")
    message = load_error(root)
    assert str(bad) in message and "not a readable image" in message


def test_empty_image_file(root):
    bad = root / "train" / "images" / "b.png"
    bad.write_bytes(b"")
    message = load_error(root)
    assert str(bad) in message


def test_truncated_jpeg(root):
    (root / "train" / "images" / "c.png").unlink()
    good = write_image(root / "train" / "images" / "c.jpg", seed=3)
    content = good.read_bytes()
    good.write_bytes(content[: len(content) // 2])
    message = load_error(root)
    assert str(good) in message and "truncated JPEG" in message


def test_corrupt_label(root):
    bad = root / "train" / "labels" / "b.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(40))
    message = load_error(root)
    assert str(bad) in message


def test_label_values_out_of_range(root):
    label = striped_label(3)
    label[0, 0] = 7
    label[1, 1] = 9
    bad = write_label(root / "train" / "labels" / "b.png", label)
    message = load_error(root)
    assert str(bad) in message
    assert "[7, 9]" in message and "outside 0..2" in message


def test_label_map_leaves_other_values_checked(tmp_path):
    root = tmp_path / "ds"
    write_image(root / "train" / "images" / "a.png")
    bad = write_label(root / "train" / "labels" / "a.png", np.full((IMAGE_HEIGHT, IMAGE_WIDTH), 128, np.uint8))
    message = load_error(root, label_map={255: 1})
    assert str(bad.resolve()) in message and "[128]" in message


def test_rgb_label_without_palette(root):
    bad = write_label(root / "train" / "labels" / "c.png", color_label(striped_label(3)))
    message = load_error(root)
    assert str(bad) in message
    assert "3 channels" in message and "data.palette" in message


def test_16_bit_label(root):
    bad = write_label(root / "train" / "labels" / "a.png", striped_label(3).astype(np.uint16))
    message = load_error(root)
    assert str(bad) in message and "uint16" in message


def test_label_size_differs_from_image(root):
    bad = write_label(root / "train" / "labels" / "b.png", striped_label(3, height=IMAGE_HEIGHT, width=IMAGE_WIDTH + 2))
    message = load_error(root)
    assert str(bad) in message
    assert f"{IMAGE_WIDTH + 2}x{IMAGE_HEIGHT}" in message and f"{IMAGE_WIDTH}x{IMAGE_HEIGHT}" in message


def test_empty_split(tmp_path):
    root = (tmp_path / "ds").resolve()
    (root / "train" / "images").mkdir(parents=True)
    (root / "train" / "labels").mkdir()
    (root / "train" / "images" / "notes.txt").write_text("not an image")
    message = load_error(root)
    assert str(root / "train" / "images") in message and "empty" in message


def test_missing_split_folder(root):
    message = load_error(root, split="val")
    assert str(root / "val" / "images") in message and "folder not found" in message


def test_missing_labels_folder(root):
    for path in (root / "train" / "labels").iterdir():
        path.unlink()
    (root / "train" / "labels").rmdir()
    message = load_error(root)
    assert str(root / "train" / "labels") in message and "folder not found" in message
