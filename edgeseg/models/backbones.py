"""MobileNet backbones built from plain Keras layers, so TF-MOT can wrap every one of them.

BatchNorm momentum is 0.9, not keras.applications' 0.999: trained from scratch for a few
epochs, 0.999 leaves the moving statistics far from the data and inference-mode accuracy
collapses while training loss looks fine.

MobileNetV3's hard-swish is `x * relu6(x + 3) / 6`; keras.applications writes `x + 3.0` as a raw
op (a TFOpLambda, which TF-MOT refuses). Here it is `Rescaling(1/6, offset=0.5)` (x/6 + 1/2),
`ReLU(max_value=1)` and `Multiply`: the same function from real layers. The layers are created
in keras.applications' order, so `imagenet` weights map onto them one by one.
"""

from edgeseg._keras import keras

layers = keras.layers
BATCHNORM_MOMENTUM = 0.9

# (expansion, output channels, repeats, stride) of MobileNetV2's inverted-residual groups.
_MOBILENET_V2_GROUPS = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1))


# (expansion, output channels, kernel, stride, squeeze-excite, hard-swish) of MobileNetV3's blocks.
_MOBILENET_V3_SMALL = (
    (1, 16, 3, 2, True, False),
    (72 / 16, 24, 3, 2, False, False),
    (88 / 24, 24, 3, 1, False, False),
    (4, 40, 5, 2, True, True),
    (6, 40, 5, 1, True, True),
    (6, 40, 5, 1, True, True),
    (3, 48, 5, 1, True, True),
    (3, 48, 5, 1, True, True),
    (6, 96, 5, 2, True, True),
    (6, 96, 5, 1, True, True),
    (6, 96, 5, 1, True, True),
)
_MOBILENET_V3_LARGE = (
    (1, 16, 3, 1, False, False),
    (4, 24, 3, 2, False, False),
    (3, 24, 3, 1, False, False),
    (3, 40, 5, 2, True, False),
    (3, 40, 5, 1, True, False),
    (3, 40, 5, 1, True, False),
    (6, 80, 3, 2, False, True),
    (2.5, 80, 3, 1, False, True),
    (2.3, 80, 3, 1, False, True),
    (2.3, 80, 3, 1, False, True),
    (6, 112, 3, 1, True, True),
    (6, 112, 3, 1, True, True),
    (6, 160, 5, 2, True, True),
    (6, 160, 5, 1, True, True),
    (6, 160, 5, 1, True, True),
)


def activation(x, name: str, kind: str = "relu6"):
    """`relu6`, `relu` or `hard_swish`, each from real Keras layers."""
    if kind == "relu6":
        return layers.ReLU(6.0, name=f"{name}_relu")(x)
    if kind == "relu":
        return layers.ReLU(name=f"{name}_relu")(x)
    return layers.Multiply(name=f"{name}_hswish")([x, hard_sigmoid(x, f"{name}_hswish")])


def hard_sigmoid(x, name: str):
    """relu6(x + 3) / 6, written as clip(x / 6 + 1/2, 0, 1)."""
    x = layers.Rescaling(1 / 6, offset=0.5, name=f"{name}_affine")(x)
    return layers.ReLU(1.0, name=f"{name}_clip")(x)


def conv_bn_relu(x, filters: int, name: str, kernel_size: int = 1, strides: int = 1, dilation_rate: int = 1, kind: str = "relu6"):
    """Conv2D -> BatchNorm -> activation (ReLU6 unless `kind` says otherwise), the unit every zoo model is made of."""
    x = layers.Conv2D(
        filters, kernel_size, strides=strides, dilation_rate=dilation_rate, padding="same", use_bias=False, name=f"{name}_conv"
    )(x)
    x = layers.BatchNormalization(momentum=BATCHNORM_MOMENTUM, name=f"{name}_bn")(x)
    return activation(x, name, kind)


def depthwise_bn_relu(x, name: str, strides: int = 1, dilation_rate: int = 1, kernel_size: int = 3, kind: str = "relu6"):
    x = layers.DepthwiseConv2D(
        kernel_size, strides=strides, dilation_rate=dilation_rate, padding="same", use_bias=False, name=f"{name}_dw"
    )(x)
    x = layers.BatchNormalization(momentum=BATCHNORM_MOMENTUM, name=f"{name}_dw_bn")(x)
    return activation(x, f"{name}_dw", kind)


def mobilenet_v2_features(image, alpha: float, output_stride: int) -> dict[int, object]:
    """MobileNetV2 on a normalized image: skip features by stride, and the deepest map as "deep".

    Each stride key holds the last map at that stride before the network downsamples (the skip
    connections decoders use); strides beyond `output_stride` are replaced by dilation, as in DeepLab,
    so "deep" is at `output_stride`.

    Example::

        features = mobilenet_v2_features(normalized, alpha=0.5, output_stride=16)
        sorted(features, key=str)
    """
    x = conv_bn_relu(image, _divisible(32 * alpha), "stem", kernel_size=3, strides=2)
    blocks = [
        (expansion, channels, 3, group_stride if repeat == 0 else 1, False, "relu6")
        for expansion, channels, repeats, group_stride in _MOBILENET_V2_GROUPS
        for repeat in range(repeats)
    ]
    return _stack(x, blocks, alpha, output_stride, expand_by=lambda channels, expansion: channels * expansion)


def mobilenet_v3_features(image, alpha: float, output_stride: int, large: bool, minimalistic: bool = False) -> dict:
    """MobileNetV3 Small or Large on a normalized image, features by stride as `mobilenet_v2_features`.

    `minimalistic` is the variant without squeeze-excite, hard-swish or 5x5 kernels (friendlier
    to some NPUs). The last 1x1 convolution (6x channels) of keras.applications' backbone is kept.
    """
    hard = "relu" if minimalistic else "hard_swish"
    x = conv_bn_relu(image, 16, "stem", kernel_size=3, strides=2, kind=hard)
    table = _MOBILENET_V3_LARGE if large else _MOBILENET_V3_SMALL
    blocks = [
        (expansion, channels, 3 if minimalistic else kernel, stride, squeeze and not minimalistic, hard if swish else "relu")
        for expansion, channels, kernel, stride, squeeze, swish in table
    ]
    features = _stack(x, blocks, alpha, output_stride, expand_by=lambda channels, expansion: _divisible(channels * expansion))
    features["deep"] = conv_bn_relu(features["deep"], _divisible(features["deep"].shape[-1] * 6), "last", kind=hard)
    return features


def _stack(x, blocks, alpha: float, output_stride: int, expand_by) -> dict:
    """Inverted-residual blocks with stride 2 turned into dilation past `output_stride`, as in DeepLab."""
    stride, dilation = 2, 1
    features: dict[int | str, object] = {}
    for index, (expansion, channels, kernel, block_stride, squeeze, kind) in enumerate(blocks):
        if block_stride == 2:
            features.setdefault(stride, x)
            if stride >= output_stride:
                dilation, block_stride = dilation * 2, 1
            else:
                stride *= 2
        expanded = expand_by(x.shape[-1], expansion) if expansion != 1 else None
        x = _inverted_residual(
            x, expanded, _divisible(channels * alpha), kernel, block_stride, dilation, squeeze, kind, f"block{index}"
        )
    features["deep"] = x
    return features


def _inverted_residual(
    x, expanded: int | None, filters: int, kernel: int, strides: int, dilation: int, squeeze: bool, kind: str, name: str
):
    in_channels = x.shape[-1]
    shortcut = x
    if expanded is not None:
        x = conv_bn_relu(x, expanded, f"{name}_expand", kind=kind)
    x = depthwise_bn_relu(x, name, strides=strides, dilation_rate=dilation, kernel_size=kernel, kind=kind)
    if squeeze:
        x = _squeeze_excite(x, f"{name}_se")
    x = layers.Conv2D(filters, 1, use_bias=False, name=f"{name}_project_conv")(x)
    x = layers.BatchNormalization(momentum=BATCHNORM_MOMENTUM, name=f"{name}_project_bn")(x)
    if strides == 1 and in_channels == filters:
        x = layers.Add(name=f"{name}_add")([shortcut, x])
    return x


def _squeeze_excite(x, name: str):
    channels = x.shape[-1]
    gate = layers.GlobalAveragePooling2D(keepdims=True, name=f"{name}_pool")(x)
    gate = layers.Conv2D(_divisible(channels * 0.25), 1, name=f"{name}_reduce")(gate)
    gate = layers.ReLU(name=f"{name}_relu")(gate)
    gate = layers.Conv2D(channels, 1, name=f"{name}_expand")(gate)
    return layers.Multiply(name=f"{name}_scale")([x, hard_sigmoid(gate, f"{name}_gate")])


def _divisible(value: float, divisor: int = 8) -> int:
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded
