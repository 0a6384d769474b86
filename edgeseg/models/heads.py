"""Segmentation heads: DeepLabV3+ for teachers, LR-ASPP for phone-sized students, and the minimal
head (a 1x1 classifier on the backbone's deepest features).

Both end in logits at the input resolution, upsampled bilinearly by whole factors, which every
TFLite backend supports as RESIZE_BILINEAR.
"""

from edgeseg._keras import keras
from edgeseg.models.backbones import conv_bn_relu, depthwise_bn_relu

layers = keras.layers
HEAD_CHANNELS = 128  # 256 in the paper; 128 keeps CPU training in minutes at a small mIoU cost


def deeplabv3plus_head(features: dict, num_classes: int, output_stride: int, input_size):
    """ASPP over the deepest features, then a decoder that mixes in stride-4 detail."""
    deep = features["deep"]
    rates = [rate * 16 // output_stride for rate in (6, 12, 18)]
    branches = [conv_bn_relu(deep, HEAD_CHANNELS, "aspp_1x1")]
    for rate in rates:
        branch = depthwise_bn_relu(deep, f"aspp_rate{rate}", dilation_rate=rate)
        branches.append(conv_bn_relu(branch, HEAD_CHANNELS, f"aspp_rate{rate}_pointwise"))
    branches.append(_image_pooling(deep, HEAD_CHANNELS, "aspp_pool"))
    x = layers.Concatenate(name="aspp_concat")(branches)
    x = conv_bn_relu(x, HEAD_CHANNELS, "aspp_project")
    x = layers.UpSampling2D(output_stride // 4, interpolation="bilinear", name="decoder_upsample")(x)
    detail = conv_bn_relu(features[4], 48, "decoder_detail")
    x = layers.Concatenate(name="decoder_concat")([x, detail])
    for index in range(2):
        x = depthwise_bn_relu(x, f"decoder_refine{index}")
        x = conv_bn_relu(x, HEAD_CHANNELS, f"decoder_refine{index}_pointwise")
    return _classifier(x, num_classes, stride=4)


def lraspp_head(features: dict, num_classes: int, output_stride: int, input_size):
    """LR-ASPP (Howard et al. 2019): a gated 1x1 branch on deep features plus a stride-8 skip."""
    deep = features["deep"]
    x = conv_bn_relu(deep, HEAD_CHANNELS, "lraspp_branch")
    gate = layers.GlobalAveragePooling2D(keepdims=True, name="lraspp_gate_pool")(deep)
    gate = layers.Conv2D(HEAD_CHANNELS, 1, name="lraspp_gate_conv")(gate)
    gate = layers.Activation("sigmoid", name="lraspp_gate_sigmoid")(gate)
    x = layers.Multiply(name="lraspp_gate")([x, gate])
    if output_stride > 8:
        x = layers.UpSampling2D(output_stride // 8, interpolation="bilinear", name="lraspp_upsample")(x)
    x = layers.Conv2D(num_classes, 1, name="lraspp_deep_logits")(x)
    skip = layers.Conv2D(num_classes, 1, name="lraspp_skip_logits")(features[8])
    x = layers.Add(name="lraspp_merge")([x, skip])
    return layers.UpSampling2D(8, interpolation="bilinear", name="logits")(x)


def minimal_head(features: dict, num_classes: int, output_stride: int, input_size):
    """A 1x1 classifier on the deepest features, upsampled by `output_stride`: no skip, no context
    module, no dilation at output stride 32, so nothing but the backbone costs time.

    Issue 19 reports a MobileNetV2 a0.5 with this head scoring 0.41 mIoU on CamVid footage outside
    train against LR-ASPP a0.35's 0.36, at 0.88x its latency (not re-measured here yet); at output
    stride 8 or 16 the backbone dilates its last blocks instead (SPACE_TO_BATCH / BATCH_TO_SPACE ops
    in the int8 file).
    """
    return _classifier(features["deep"], num_classes, stride=output_stride)


def _image_pooling(x, filters: int, name: str):
    height, width = x.shape[1], x.shape[2]
    pooled = layers.GlobalAveragePooling2D(keepdims=True, name=f"{name}_gap")(x)
    pooled = conv_bn_relu(pooled, filters, name)
    return layers.UpSampling2D((height, width), interpolation="nearest", name=f"{name}_broadcast")(pooled)


def _classifier(x, num_classes: int, stride: int):
    x = layers.Conv2D(num_classes, 1, name="classifier")(x)
    return layers.UpSampling2D(stride, interpolation="bilinear", name="logits")(x)
