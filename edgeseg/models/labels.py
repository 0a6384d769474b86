"""The `labels` output (`export: {output: labels}`): class ids in the graph instead of logits.

A zoo head ends with its classifier at stride 4 or 8 and a bilinear upsample of the logits to the
input size. For a labels output the argmax moves before that upsample: it runs on 1/16 or 1/64 of
the pixels, the C-channel bilinear resize disappears, and the ids are repeated to the input size
(TILE + DEPTH_TO_SPACE, since TFLite has no integer nearest-neighbour resize). The price is blockier
class borders; docs/MODELS.md measures both sides. The output is uint8 [1, H, W]: an app paints it.

Example::

    labels = labels_model(model)
    labels.output_shape
"""

from edgeseg._keras import keras, tf


@keras.utils.register_keras_serializable(package="edgeseg")
class ClassIds(keras.layers.Layer):
    """Argmax over the class axis as uint8 ids, each repeated `factor` x `factor` times."""

    def __init__(self, factor: int = 1, **kwargs):
        super().__init__(**kwargs)
        self.factor = factor

    def call(self, logits):
        ids = tf.cast(tf.argmax(logits, axis=-1, output_type=tf.int32), tf.uint8)[..., None]
        if self.factor > 1:
            ids = tf.nn.depth_to_space(tf.tile(ids, [1, 1, 1, self.factor**2]), self.factor)
        return ids[..., 0]

    def get_config(self):
        return {**super().get_config(), "factor": self.factor}


def labels_model(model, before_upsample: bool = True) -> keras.Model:
    """A new model with `model`'s layers whose output is class ids [N, H, W] (uint8).

    With `before_upsample`, a model whose last layer is a bilinear upsample by a whole factor (every
    zoo head, also inside a QAT wrapper) takes the argmax before it; any other model takes it on
    its logits.
    """
    last = model.layers[-1]
    upsample = getattr(last, "layer", last)  # TF-MOT's QuantizeWrapper holds the layer it wraps
    if (
        before_upsample
        and isinstance(upsample, keras.layers.UpSampling2D)
        and upsample.interpolation == "bilinear"
        and upsample.size[0] == upsample.size[1]
    ):
        ids = ClassIds(upsample.size[0], name="labels")(last.input)
    else:
        ids = ClassIds(name="labels")(model.output)
    return keras.Model(model.input, ids, name=f"{model.name}_labels")


def shipped_form(model, output: str):
    """`model` as an export ships it: ending in the in-graph argmax (`labels_model`) for
    `output: labels`, as it is for `logits`. What is converted, and the float reference a drop is
    measured against."""
    return labels_model(model) if output == "labels" else model
