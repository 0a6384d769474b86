"""ImageNet weights for the zoo's backbones, taken from keras.applications and mapped onto our layers.

keras.applications builds MobileNetV3's hard-swish from raw ops TF-MOT refuses and pads strided
convolutions its own way; the zoo's backbones are built from plain layers instead, created in the
same order with the same shapes. So the weighted layers of the two backbones pair up one by one:
each pair's shapes are checked, and any mismatch stops with the first pair that differs.

Example::

    spec = ModelSpec(arch="lraspp", backbone="mobilenet_v3_small", alpha=1.0, backbone_weights="imagenet")
    build_model(spec, (224, 224), num_classes=11)   # Keras downloads the weights once
"""

from edgeseg._keras import keras
from edgeseg.errors import ModelError

APPLICATIONS = {
    "mobilenet_v2": keras.applications.MobileNetV2,
    "mobilenet_v3_small": keras.applications.MobileNetV3Small,
    "mobilenet_v3_large": keras.applications.MobileNetV3Large,
}
BACKBONE_LAYER_PREFIXES = ("stem_", "block", "last_")


def load_imagenet_backbone(model, spec) -> None:
    """Sets the backbone layers of zoo `model` to keras.applications' weights for `spec`:
    `spec.backbone_weights` is "imagenet" (downloaded by Keras) or the path of that weights file."""
    source = _application(spec)
    theirs = [layer for layer in source.layers if layer.weights]
    ours = [layer for layer in model.layers if layer.weights and layer.name.startswith(BACKBONE_LAYER_PREFIXES)]
    # keras.applications' MobileNetV2 ends with a 1280-channel convolution the zoo's backbone leaves out.
    if len(theirs) < len(ours):
        raise ModelError(
            f"{spec.backbone_weights}: {len(theirs)} weighted layers for the {len(ours)} of the "
            f"{spec.backbone} a{spec.alpha:g} backbone. Received: backbone_weights={str(spec.backbone_weights)!r}"
        )
    for mine, their in zip(ours, theirs):
        shapes, their_shapes = [w.shape for w in mine.get_weights()], [w.shape for w in their.get_weights()]
        if shapes != their_shapes:
            raise ModelError(
                f"{spec.backbone_weights}: layer {their.name} {their_shapes} does not fit {mine.name} "
                f"{shapes}. Received: backbone={spec.backbone!r}, alpha={spec.alpha}"
            )
        mine.set_weights(their.get_weights())


def _application(spec):
    options = {"input_shape": (224, 224, 3), "alpha": spec.alpha, "include_top": False, "weights": str(spec.backbone_weights)}
    if spec.backbone != "mobilenet_v2":
        options["minimalistic"] = spec.minimalistic
    try:
        return APPLICATIONS[spec.backbone](**options)
    except ValueError as error:  # an alpha without published weights, or a file for another model
        raise ModelError(
            f"backbone_weights: {str(error).splitlines()[0][:300]} Received: backbone={spec.backbone!r}, "
            f"alpha={spec.alpha}, backbone_weights={str(spec.backbone_weights)!r}"
        ) from None
    except Exception as error:  # Keras' downloader raises a bare Exception when offline; OSError for a bad file
        raise ModelError(
            f"backbone_weights: cannot get the {spec.backbone} ImageNet weights ({error}); on a machine "
            f"without a network, download them elsewhere and set backbone_weights to the file. "
            f"Received: backbone_weights={str(spec.backbone_weights)!r}"
        ) from None
