"""A `.tflite` file as a distillation teacher: distilling needs only its logits.

The interpreter runs outside the TensorFlow graph (through `tf.numpy_function`), so the file is
never converted back to Keras; it can teach, not be trained, pruned or clustered.

Example:
    >>> teacher = TFLiteTeacher(Path("other_team/model.tflite"))
    >>> teacher(images).shape          # float logits, dequantized from an int8 output
    TensorShape([8, 64, 64, 4])
"""

from pathlib import Path

import numpy as np

from edgeseg._keras import tf
from edgeseg.tflite import TFLiteSegmenter


class TFLiteTeacher:
    """Logits of a segmentation `.tflite` for a batch of RGB 0..255 images, in the shape Keras models give."""

    def __init__(self, path: Path, threads: int = 2):
        self.path = Path(path)
        self.segmenter = TFLiteSegmenter(self.path, threads=threads)
        height, width = self.segmenter.input_size
        classes = int(self.segmenter.output["shape"][-1])
        self.name = self.path.stem
        self.input_shape = (None, height, width, 3)
        self.output_shape = (None, *[int(d) for d in self.segmenter.output["shape"][1:3]], classes)

    def __call__(self, images, training=False):
        logits = tf.numpy_function(self._logits, [images], tf.float32, stateful=False)
        return tf.ensure_shape(logits, [None, *self.output_shape[1:]])

    def _logits(self, images: np.ndarray) -> np.ndarray:
        return self.segmenter.predict_logits(np.clip(np.round(images), 0, 255).astype(np.uint8))
