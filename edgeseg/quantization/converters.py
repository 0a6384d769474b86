"""Keras model to `.tflite`, in each of the recipe's quantization modes.

`int8` is full-integer: the input is uint8 with scale 1 and zero point 0, so an app passes RGB
pixels unchanged. The calibrator only sees the range the representative images cover, so
`calibration_images` pins one pixel of the first image to 0 and 255: the input's range is the
camera's, not the calibration set's. `int16x8`, `float16` and `dynamic` keep a float32 input and
output.
"""

import warnings

import numpy as np

from edgeseg._keras import native_stderr_silenced, tf
from edgeseg.progress import progress
from edgeseg.quiet import native_output_silenced

EXACT_PIXEL_INPUT = (1.0, 0)
"""(scale, zero point) of a full-int8 file's uint8 input: camera bytes map to the values the model saw."""
OUTPUT_TYPES = {"int8": tf.int8, "uint8": tf.uint8}


def calibration_images(images: np.ndarray, count: int, seed: int) -> np.ndarray:
    """`count` images drawn without replacement (cycling if too few), the first pinned to span 0..255."""
    order = np.random.default_rng(seed).permutation(len(images))
    chosen = images[np.resize(order, count)].copy()
    chosen[0, 0, 0], chosen[0, 0, 1] = 0, 255
    return chosen


def keras_converter(model):
    """The converter of `model`'s inference call, with the signature `from_keras_model` gives it
    (inputs and outputs by layer name), in a quarter of the time: `from_keras_model` first writes a
    Keras SavedModel, serializing every layer's call functions (about 25 s for a 150-layer model on
    2 cores), where this saves one function and the variables it reads. The file is the same but for
    the source kind its conversion metadata records (a function, not a Keras model).
    """
    spec = tf.TensorSpec([None, *model.input_shape[1:]], model.inputs[0].dtype, name=model.input_names[0])

    @tf.function(input_signature=[spec])
    def inference(image):
        return dict(zip(model.output_names, tf.nest.flatten(model(image, training=False))))

    variables = tf.Module()
    variables.of_model = list(model.variables)
    return tf.lite.TFLiteConverter.from_concrete_functions([inference.get_concrete_function()], variables)


def ptq_converter(model, images: np.ndarray | None = None):
    """A converter of `model` with TensorFlow's default optimizations and, given calibration images,
    a representative dataset of them: what every post-training quantization here starts from.

    Example::

        converter = ptq_converter(model, calibration_images(train.images, 100, seed=0))
    """
    converter = keras_converter(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if images is not None:

        def representative_dataset():
            for image in progress(images, desc="calibrating", unit="img"):
                yield [image[None].astype(np.float32)]

        converter.representative_dataset = representative_dataset
    return converter


def int8_converter(model, images: np.ndarray, output_type: str = "int8"):
    """The converter of a full-int8 `.tflite`: int8 builtins only, uint8 input, `output_type` logits.

    Example::

        converter = int8_converter(model, images)
        converter.optimizations.append(tf.lite.Optimize.EXPERIMENTAL_SPARSITY)  # sparse tensor encoding
    """
    converter = ptq_converter(model, images)
    converter.inference_input_type = tf.uint8
    converter.inference_output_type = OUTPUT_TYPES[output_type]
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    return converter


def convert_int8(model, images: np.ndarray, float_tensors: tuple[str, ...] | list[str] = (), output_type: str = "int8") -> bytes:
    """Converts a Keras model (float, or quantization-aware) to a full-int8 `.tflite`: uint8 input,
    int8 (or `output_type` uint8) logits, int8 kernels (a `labels_model` keeps its uint8 class ids).
    The ops producing `float_tensors` (names from the quantization debugger) stay in float, between
    a dequantize and a quantize.

    Example::

        TFLiteSegmenter(convert_int8(model, images, output_type="uint8")).output["dtype"]   # numpy.uint8
    """
    converter = int8_converter(model, images, output_type)
    # mlir_quantize prints its settings on stdout.
    with native_output_silenced(), warnings.catch_warnings():
        # The converter warns that uint8 input statistics are missing; calibration provides them.
        warnings.filterwarnings("ignore", message="Statistics for quantized inputs")
        if not float_tensors:
            return converter.convert()
        # The public converter cannot leave chosen ops in float; the quantization debugger does it by
        # calibrating first and quantizing with a denylist, and the converter then sets the I/O
        # types, through these same internal calls.
        from tensorflow.lite.python.convert import mlir_quantize
        from tensorflow.lite.python.util import modify_model_io_type

        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
        converter._experimental_calibrate_only = True
        quantized = mlir_quantize(converter.convert(), denylisted_nodes=list(float_tensors))
        return modify_model_io_type(quantized, tf.uint8, OUTPUT_TYPES[output_type])


def convert(model, mode: str, images: np.ndarray, output_type: str = "int8") -> bytes:
    """The `.tflite` of a float Keras model in one of the recipe's quantization modes.

    Example::

        TFLiteSegmenter(convert(model, "float16", images)).input["dtype"]   # numpy.float32
    """
    if mode == "int8":
        return convert_int8(model, images, output_type=output_type)
    converter = ptq_converter(model, images if mode == "int16x8" else None)
    if mode == "int16x8":
        converter.target_spec.supported_ops = [tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8]
    elif mode == "float16":
        converter.target_spec.supported_types = [tf.float16]
    with native_output_silenced():
        return converter.convert()


def convert_float(model) -> bytes:
    """The float32 `.tflite` of a Keras model: the reference that separates conversion from quantization error."""
    with native_stderr_silenced():
        return keras_converter(model).convert()
