"""tf.data pipelines: augmented, shuffled training batches.

Randomness is stateless and keyed by (seed, position in the stream), so the same seed gives the
same batches, epoch after epoch, whatever the number of parallel calls.
"""

from edgeseg._keras import tf
from edgeseg.data.split import SegmentationSplit


def training_batches(
    split: SegmentationSplit, batch_size: int, augment, seed: int, skip_batches: int = 0, extras: dict | None = None
) -> tf.data.Dataset:
    """An endless stream of augmented (float32 image 0..255, int32 label) batches.

    `skip_batches` starts the stream where an earlier one stood after that many batches (to resume
    training); skipped examples are never augmented. `extras` (name -> one value per image) travel
    with their images unchanged, as a third element: augmentation does not touch them.

    Example::

        batches = training_batches(train, 16, recipe.data.augment, seed=0)
        model.fit(batches, steps_per_epoch=len(train) // 16, epochs=3)
    """
    dataset = tf.data.Dataset.from_tensor_slices((split.images, split.labels, *([extras] if extras else [])))
    dataset = dataset.shuffle(len(split), seed=seed, reshuffle_each_iteration=True).repeat()
    dataset = dataset.enumerate().skip(skip_batches * batch_size)

    def prepare(position, example):
        image, label, *carried = example
        if augment is not None:
            image, label = _augment(image, label, augment, split.ignore_index, tf.stack([seed, tf.cast(position, tf.int32)]))
        return tf.cast(image, tf.float32), tf.cast(label, tf.int32), *carried

    dataset = dataset.map(prepare, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return dataset.batch(batch_size, drop_remainder=True).prefetch(tf.data.AUTOTUNE)


def steps_per_epoch(split: SegmentationSplit, batch_size: int) -> int:
    return max(1, len(split) // batch_size)


def _augment(image, label, augment, ignore_index, seed):
    seeds = tf.random.experimental.stateless_split(seed, num=6)
    height, width = image.shape[0], image.shape[1]
    scale = tf.random.stateless_uniform([], seeds[0], augment.scale[0], augment.scale[1])
    scaled_size = tf.cast(tf.round(tf.constant([height, width], tf.float32) * scale), tf.int32)
    image = tf.image.resize(image, scaled_size, method="bilinear")
    label = tf.image.resize(label[..., None], scaled_size, method="nearest")
    # Zoomed-out images are padded; padded pixels are ignored by the loss.
    padded_h, padded_w = tf.maximum(scaled_size[0], height), tf.maximum(scaled_size[1], width)
    image = tf.image.pad_to_bounding_box(image, 0, 0, padded_h, padded_w)
    label = tf.image.pad_to_bounding_box(label - ignore_index, 0, 0, padded_h, padded_w) + ignore_index
    stacked = tf.concat([image, tf.cast(label, tf.float32)], axis=-1)
    stacked = tf.image.stateless_random_crop(stacked, [height, width, 4], seeds[1])
    if augment.hflip:
        stacked = tf.image.stateless_random_flip_left_right(stacked, seeds[2])
    image, label = stacked[..., :3], tf.cast(stacked[..., 3], tf.uint8)
    if augment.brightness:
        image += 255.0 * tf.random.stateless_uniform([], seeds[3], -augment.brightness, augment.brightness)
    if augment.contrast:
        image = tf.image.stateless_random_contrast(image, 1 - augment.contrast, 1 + augment.contrast, seeds[4])
    return tf.clip_by_value(image, 0.0, 255.0), label
