"""MobileNet backbones built from plain Keras layers, so TF-MOT can wrap every one of them.

BatchNorm momentum is 0.9, not keras.applications' 0.999: trained from scratch for a few
epochs, 0.999 leaves the moving statistics far from the data and inference-mode accuracy
collapses while training loss looks fine.
"""

from edgeseg._keras import keras

layers = keras.layers
BATCHNORM_MOMENTUM = 0.9

# (expansion, output channels, repeats, stride) of MobileNetV2's inverted-residual groups.
_MOBILENET_V2_GROUPS = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1))


def conv_bn_relu(x, filters: int, name: str, kernel_size: int = 1, strides: int = 1, dilation_rate: int = 1):
    """Conv2D -> BatchNorm -> ReLU6, the unit every zoo model is made of."""
    x = layers.Conv2D(
        filters, kernel_size, strides=strides, dilation_rate=dilation_rate, padding="same", use_bias=False, name=f"{name}_conv"
    )(x)
    x = layers.BatchNormalization(momentum=BATCHNORM_MOMENTUM, name=f"{name}_bn")(x)
    return layers.ReLU(6.0, name=f"{name}_relu")(x)


def depthwise_bn_relu(x, name: str, strides: int = 1, dilation_rate: int = 1):
    x = layers.DepthwiseConv2D(
        3, strides=strides, dilation_rate=dilation_rate, padding="same", use_bias=False, name=f"{name}_dw"
    )(x)
    x = layers.BatchNormalization(momentum=BATCHNORM_MOMENTUM, name=f"{name}_dw_bn")(x)
    return layers.ReLU(6.0, name=f"{name}_dw_relu")(x)


def mobilenet_v2_features(image, alpha: float, output_stride: int) -> dict[int, object]:
    """MobileNetV2 on a normalized image: skip features by stride, and the deepest map as "deep".

    Each stride key holds the last map at that stride before the network downsamples (the skip
    connections decoders use); strides beyond `output_stride` are replaced by dilation, as in DeepLab,
    so "deep" is at `output_stride`.

    Example:
        >>> features = mobilenet_v2_features(normalized, alpha=0.5, output_stride=16)
        >>> sorted(features, key=str)
        [16, 2, 4, 8, 'deep']
    """
    x = conv_bn_relu(image, _divisible(32 * alpha), "stem", kernel_size=3, strides=2)
    stride, dilation, features = 2, 1, {}
    block = 0
    for expansion, channels, repeats, group_stride in _MOBILENET_V2_GROUPS:
        for repeat in range(repeats):
            block_stride = group_stride if repeat == 0 else 1
            if block_stride == 2:
                features.setdefault(stride, x)
                if stride >= output_stride:
                    dilation, block_stride = dilation * 2, 1
                else:
                    stride *= 2
            x = _inverted_residual(x, expansion, _divisible(channels * alpha), block_stride, dilation, f"block{block}")
            block += 1
    features["deep"] = x
    return features


def _inverted_residual(x, expansion: int, filters: int, strides: int, dilation: int, name: str):
    in_channels = x.shape[-1]
    shortcut = x
    if expansion != 1:
        x = conv_bn_relu(x, in_channels * expansion, f"{name}_expand")
    x = depthwise_bn_relu(x, name, strides=strides, dilation_rate=dilation)
    x = layers.Conv2D(filters, 1, use_bias=False, name=f"{name}_project_conv")(x)
    x = layers.BatchNormalization(momentum=BATCHNORM_MOMENTUM, name=f"{name}_project_bn")(x)
    if strides == 1 and in_channels == filters:
        x = layers.Add(name=f"{name}_add")([shortcut, x])
    return x


def _divisible(value: float, divisor: int = 8) -> int:
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded
