"""Training batches are augmented, seeded and deterministic; padding is ignored by the loss."""

import numpy as np

from edgeseg.data import load_split
from edgeseg.data.pipeline import training_batches
from edgeseg.recipe import AugmentConfig, parse_recipe
from tests.helpers import tiny_recipe_dict


def first_batches(split, augment, seed, count=3):
    return [(x.numpy(), y.numpy()) for x, y in training_batches(split, 8, augment, seed).take(count)]


def tiny_train_split():
    return load_split(parse_recipe(tiny_recipe_dict()).data, "train", seed=0)


def test_same_seed_gives_identical_batches_and_another_seed_does_not():
    split, augment = tiny_train_split(), AugmentConfig()
    first, again, other = first_batches(split, augment, 0), first_batches(split, augment, 0), first_batches(split, augment, 1)
    assert all(np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1]) for a, b in zip(first, again))
    assert not np.array_equal(first[0][0], other[0][0])


def test_zoomed_out_padding_is_labeled_ignore_and_labels_stay_class_ids():
    split = tiny_train_split()
    zoom_out = AugmentConfig(scale=(0.5, 0.5), hflip=False, brightness=0, contrast=0)
    images, labels = first_batches(split, zoom_out, 0, count=1)[0]
    assert images.shape == (8, 32, 32, 3) and labels.shape == (8, 32, 32)
    assert set(np.unique(labels)) <= {0, 1, 2, 3, split.ignore_index}
    assert (labels == split.ignore_index).mean() >= 0.7, "a half-size image leaves 3/4 of the crop as padding"
    assert images.min() >= 0 and images.max() <= 255


def test_without_augmentation_batches_are_the_images_themselves():
    split = tiny_train_split()
    images, labels = first_batches(split, None, 0, count=1)[0]
    stored = {image.tobytes() for image in split.images}
    assert all(image.astype(np.uint8).tobytes() in stored for image in images)
