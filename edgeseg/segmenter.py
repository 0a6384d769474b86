"""The segmenter protocol: what scoring, agreement, calibration checks and soak tests ask of a model,
met by a Keras model (`KerasSegmenter`, here) and by a `.tflite` (`edgeseg.tflite.TFLiteSegmenter`).

Images go in as RGB uint8 [N, H, W, 3] at the model's input size. A segmenter outputs either
logits [N, H, W, C] or, for a labels export (`outputs_labels`), class ids [N, H, W]; asking a labels
model for logits is an error, since it has none.

Example::

    def pixel_share(segmenter: Segmenter, images, class_id):
        return float((segmenter.predict_labels(images) == class_id).mean())
"""

from typing import Any, Protocol, runtime_checkable

import numpy as np

from edgeseg.errors import ModelError

CHUNK = 16


@runtime_checkable
class Segmenter(Protocol):
    """A segmentation model that maps RGB uint8 images to logits or to class ids."""

    @property
    def input_size(self) -> tuple[int, int]:
        """(height, width) of the images the model takes."""

    @property
    def outputs_labels(self) -> bool:
        """Whether the output is class ids [N, H, W] rather than logits [N, H, W, C]."""

    def predict_logits(self, images: np.ndarray) -> np.ndarray:
        """Float logits [N, H, W, C]; raises `ModelError` for a model that outputs class ids."""

    def predict_labels(self, images: np.ndarray) -> np.ndarray:
        """Class ids [N, H, W] as uint8: the model's own, or the argmax of its logits."""


class KerasSegmenter:
    """A Keras segmentation model (logits or, see `edgeseg.models.labels`, class ids out) run in
    inference mode, `batch_size` images at a time."""

    def __init__(self, model: Any, batch_size: int = CHUNK, source: str | None = None):
        from edgeseg._keras import tf

        self.model, self.batch_size, self._tf = model, batch_size, tf
        self.source = source or model.name
        # One trace for every batch size: tracing a wrapped (pruning, clustering) model takes seconds.
        images = tf.TensorSpec([None, *model.input_shape[1:]], tf.float32)
        self._outputs = tf.function(lambda images: model(images, training=False), input_signature=[images])

    @property
    def input_size(self) -> tuple[int, int]:
        return tuple(self.model.input_shape[1:3])

    @property
    def outputs_labels(self) -> bool:
        return len(self.model.output_shape) == 3

    def predict_logits(self, images: np.ndarray) -> np.ndarray:
        if self.outputs_labels:
            raise ModelError(
                f"{self.source}: outputs class ids [N, H, W], not logits. Received: output shape {list(self.model.output_shape)}"
            )
        return self._predict(images)

    def predict_labels(self, images: np.ndarray) -> np.ndarray:
        outputs = self._predict(images)
        return outputs.astype(np.uint8) if self.outputs_labels else outputs.argmax(axis=-1).astype(np.uint8)

    def _predict(self, images: np.ndarray) -> np.ndarray:
        batches = [
            self._outputs(self._tf.constant(images[start : start + self.batch_size], self._tf.float32)).numpy()
            for start in range(0, len(images), self.batch_size)
        ]
        return np.concatenate(batches)
