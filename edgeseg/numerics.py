"""Which float kernels this machine runs: a fingerprint of eight ops training uses, so two machines
whose runs differ can be compared op by op instead of run by run.

Each op runs forward and backward on fixed inputs (seeded) at the feature maps of the quickstart's
64x64 and CamVid's 192x256 inputs at stride 2 (labelled by the input size), in TensorFlow's
intra-op threads as training runs them; the fingerprint is a hash of the float32 results. Two
machines that give different hashes for an op compute it differently at that shape; the same
hashes everywhere say these ops agree, not that every op of a training does (activations, adds,
pooling and the optimizer are not among them). A run's figures also depend on the thread count
and on oneDNN's settings (`edgeseg._keras`), which `numeric_environment` records beside it.

Example::

    fingerprint()["conv3x3 64x64"]   # e.g. '3f9c1a0b2d4e'
"""

import hashlib
from collections.abc import Callable

import numpy as np

from edgeseg._keras import tf

BATCH = 4
# (label, height, width): the feature maps of the quickstart's 64x64 input and CamVid's 192x256, at stride 2.
RESOLUTIONS = (("64x64", 32, 32), ("192x256", 96, 128))
CHANNELS = 24


def fingerprint(seed: int = 0) -> dict[str, str]:
    """A short hash of each op's forward and backward results, by `<op> <input size>`."""
    hashes = {}
    for label, height, width in RESOLUTIONS:
        rng = np.random.default_rng(seed)
        features = tf.constant(rng.normal(size=(BATCH, height, width, CHANNELS)).astype(np.float32))
        for name, (op, weight_shapes) in OPS.items():
            weights = [tf.Variable(rng.normal(0, 0.2, shape).astype(np.float32)) for shape in weight_shapes]
            hashes[f"{name} {label}"] = _hash(*_forward_and_backward(op, features, weights, rng))
    return hashes


def _forward_and_backward(op: Callable, features, weights: list, rng) -> list:
    """The op's output and the gradients of a fixed random projection of it, by its input and weights."""
    with tf.GradientTape() as tape:
        tape.watch(features)
        output = op(features, *weights)
        projection = tf.constant(rng.normal(size=output.shape).astype(np.float32))
        loss = tf.reduce_sum(output * projection)
    return [output, *tape.gradient(loss, [features, *weights])]


def _hash(*tensors) -> str:
    digest = hashlib.sha256()
    for tensor in tensors:
        digest.update(np.ascontiguousarray(tensor.numpy(), dtype=np.float32).tobytes())
    return digest.hexdigest()[:12]


def _batch_norm(features, scale, offset):
    output, _, _ = tf.compat.v1.nn.fused_batch_norm(features, scale, offset, is_training=True)
    return output


def _cross_entropy(features):
    logits = tf.reshape(features, (-1, CHANNELS))
    labels = tf.math.floormod(tf.range(tf.shape(logits)[0]), CHANNELS)
    return tf.nn.sparse_softmax_cross_entropy_with_logits(labels, logits)


# op name -> (the op on features and weights, the weights' shapes)
OPS: dict[str, tuple[Callable, list[tuple[int, ...]]]] = {
    "conv3x3": (lambda x, w: tf.nn.conv2d(x, w, 1, "SAME"), [(3, 3, CHANNELS, 32)]),
    "conv3x3 stride 2": (lambda x, w: tf.nn.conv2d(x, w, 2, "SAME"), [(3, 3, CHANNELS, 32)]),
    "conv1x1": (lambda x, w: tf.nn.conv2d(x, w, 1, "SAME"), [(1, 1, CHANNELS, 144)]),
    "depthwise3x3": (lambda x, w: tf.nn.depthwise_conv2d(x, w, (1, 1, 1, 1), "SAME"), [(3, 3, CHANNELS, 1)]),
    "batch norm": (_batch_norm, [(CHANNELS,), (CHANNELS,)]),
    "resize bilinear x2": (lambda x: tf.image.resize(x, (x.shape[1] * 2, x.shape[2] * 2)), []),
    "dense": (lambda x, w: tf.matmul(tf.reduce_mean(x, (1, 2)), w), [(CHANNELS, 64)]),
    "softmax cross-entropy": (_cross_entropy, []),
}
