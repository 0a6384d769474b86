"""The one place edgeseg imports TensorFlow, tf_keras and TF-MOT.

TF-MOT only supports the Keras 2 API, so `TF_USE_LEGACY_KERAS` must be set before
TensorFlow is first imported; TensorFlow's native start-up chatter (CUDA probes, oneDNN
notices) is written straight to file descriptor 2, so it is captured there and replayed
only if the import fails.
"""

import logging
import os

from edgeseg.quiet import native_stderr_silenced

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


with native_stderr_silenced():
    import absl.logging
    import tensorflow as tf
    import tf_keras as keras
    import tensorflow_model_optimization as tfmot

absl.logging.set_verbosity(absl.logging.ERROR)
tf.get_logger().setLevel(logging.ERROR)

__all__ = ["tf", "keras", "tfmot", "native_stderr_silenced"]
