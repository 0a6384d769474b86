"""Build a segmentation model by name: `arch` + `backbone` + `alpha` + `output_stride`.

Example:
    >>> from edgeseg.recipe import ModelSpec
    >>> model = build_model(ModelSpec(arch="lraspp", alpha=0.35), input_size=(64, 64), num_classes=4)
    >>> model.input_shape, model.output_shape
    ((None, 64, 64, 3), (None, 64, 64, 4))
"""

from edgeseg._keras import keras
from edgeseg.errors import ModelError
from edgeseg.models.backbones import mobilenet_v2_features, mobilenet_v3_features
from edgeseg.models.heads import deeplabv3plus_head, lraspp_head, minimal_head
from edgeseg.models.kinds import is_teach_only

BACKBONES = {
    "mobilenet_v2": lambda image, spec: mobilenet_v2_features(image, spec.alpha, spec.output_stride),
    "mobilenet_v3_small": lambda image, spec: mobilenet_v3_features(
        image, spec.alpha, spec.output_stride, False, spec.minimalistic
    ),
    "mobilenet_v3_large": lambda image, spec: mobilenet_v3_features(
        image, spec.alpha, spec.output_stride, True, spec.minimalistic
    ),
}
HEADS = {"deeplabv3plus": deeplabv3plus_head, "lraspp": lraspp_head, "minimal": minimal_head}


def build_model(spec, input_size, num_classes: int, seed: int = 0) -> keras.Model:
    """A functional model: RGB 0..255 float input [1, H, W, 3], logits [1, H, W, num_classes] out.

    Normalization to [-1, 1] is the model's first layer, so apps feed camera bytes unchanged.
    `spec.weights`, when set, is loaded into the new model.
    """
    keras.utils.set_random_seed(seed)
    height, width = input_size
    image = keras.Input((height, width, 3), name="image")
    normalized = keras.layers.Rescaling(1 / 127.5, offset=-1.0, name="normalize")(image)
    features = BACKBONES[spec.backbone](normalized, spec)
    logits = HEADS[spec.arch](features, num_classes, spec.output_stride, input_size)
    model = keras.Model(image, logits, name=f"{spec.arch}_{spec.backbone}_a{spec.alpha:g}")
    if spec.backbone_weights is not None:
        from edgeseg.models.imagenet import load_imagenet_backbone

        load_imagenet_backbone(model, spec)
    if spec.weights is not None:
        from edgeseg.models.io import load_weights_into

        load_weights_into(model, spec.weights)
    return model


def model_from_spec(spec, input_size, num_classes: int, seed: int = 0) -> keras.Model:
    """The recipe's `teacher:` or `student:` as a model: loaded from `path`, or built from the zoo."""
    if spec.path is None:
        return build_model(spec, input_size, num_classes, seed)
    if is_teach_only(spec.path):
        from edgeseg.models.teachers import SavedModelTeacher, TFLiteTeacher

        teacher = TFLiteTeacher(spec.path) if spec.path.suffix == ".tflite" else SavedModelTeacher(spec.path)
        if teacher.output_shape[-1] != num_classes:
            raise ModelError(f"{spec.path}: model predicts {teacher.output_shape[-1]} classes but the data has {num_classes}")
        return teacher
    from edgeseg.models.io import check_segmentation_model, load_model

    model = load_model(spec.path, trust_model_code=spec.trust_model_code)
    check_segmentation_model(model, str(spec.path), input_size, num_classes)
    return model
