"""Teachers that are not tf_keras models: a `.tflite`, or a SavedModel exported by Keras 3 or plain
TensorFlow. Distilling needs only a teacher's logits, so these can teach, not be trained, pruned
or clustered.

Example::

    teacher = TFLiteTeacher(Path("other_team/model.tflite"))
    teacher(images).shape          # float logits, dequantized from an int8 output
"""

from pathlib import Path

import numpy as np

from edgeseg._keras import native_stderr_silenced, tf
from edgeseg.errors import ModelError
from edgeseg.tflite import TFLiteSegmenter


class TFLiteTeacher:
    """Logits of a segmentation `.tflite` for RGB 0..255 images, shaped like a Keras model's.

    The interpreter runs outside the TensorFlow graph (through `tf.numpy_function`).
    """

    def __init__(self, path: Path, threads: int = 2):
        self.path = Path(path)
        self.segmenter = TFLiteSegmenter(self.path, threads=threads)
        self.name = self.path.stem
        self.input_shape = (None, *self.segmenter.input_size, 3)
        self.output_shape = (None, *[int(d) for d in self.segmenter.output["shape"][1:]])

    def __call__(self, images, training=False):
        logits = tf.numpy_function(self._logits, [images], tf.float32, stateful=False)
        return tf.ensure_shape(logits, [None, *self.output_shape[1:]])

    def _logits(self, images: np.ndarray) -> np.ndarray:
        return self.segmenter.predict_logits(np.clip(np.round(images), 0, 255).astype(np.uint8))


class SavedModelTeacher:
    """Logits of a SavedModel's `serving_default` signature (one image input, logits first output),
    as Keras 3's `model.export(...)` or `tf.saved_model.save` write it.

    Example::

        teacher = SavedModelTeacher(Path("keras3_export"))   # keras3_model.export("keras3_export")
    """

    def __init__(self, path: Path):
        self.path = Path(path)
        try:
            with native_stderr_silenced():
                # The signature holds only weak references to the variables: keep what owns them.
                self.loaded = tf.saved_model.load(str(self.path))
            self.signature = self.loaded.signatures["serving_default"]
        except (KeyError, OSError, ValueError, tf.errors.OpError) as error:
            raise ModelError(f"{self.path}: no loadable serving_default signature ({str(error).splitlines()[0][:160]})") from None
        inputs = list(self.signature.structured_input_signature[1].items())
        outputs = list(self.signature.structured_outputs.items())
        if len(inputs) != 1 or not outputs or inputs[0][1].shape.rank != 4 or outputs[0][1].shape.rank != 4:
            raise ModelError(
                f"{self.path}: expected one image input [N, H, W, 3] and logits [N, H, W, C]. "
                f"Received: inputs {[(n, s.shape.as_list()) for n, s in inputs]}, "
                f"outputs {[(n, s.shape.as_list()) for n, s in outputs]}"
            )
        (self.input_name, spec), (self.output_name, output) = inputs[0], outputs[0]
        self.input_dtype = spec.dtype
        self.name = self.path.name
        self.input_shape = tuple(spec.shape.as_list())
        self.output_shape = tuple(output.shape.as_list())

    def __call__(self, images, training=False):
        return tf.cast(self.signature(**{self.input_name: tf.cast(images, self.input_dtype)})[self.output_name], tf.float32)
