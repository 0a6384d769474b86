"""The `teacher:` and `student:` sections: a zoo model by name, or a model file."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from edgeseg.errors import RecipeError
from edgeseg.recipe.base import Section, resolve_path

Arch = Literal["deeplabv3plus", "lraspp", "minimal"]
Backbone = Literal["mobilenet_v2", "mobilenet_v3_small", "mobilenet_v3_large"]


class ModelSpec(Section):
    """A zoo model by name, or a model file given by `path`."""

    arch: Arch | None = None
    backbone: Backbone = "mobilenet_v2"
    alpha: float = Field(1.0, ge=0.35, le=1.4, description="MobileNet width multiplier")
    output_stride: Literal[8, 16, 32] = Field(
        16, description="the deepest features' stride; past it the backbone dilates (32: none, input sides multiples of 32)"
    )
    minimalistic: bool = Field(False, description="MobileNetV3 without squeeze-excite, hard-swish and 5x5 kernels")
    backbone_weights: Literal["imagenet"] | Path | None = Field(
        None,
        description="imagenet: keras.applications' ImageNet weights for the backbone, downloaded by Keras; or "
        "that weights file (e.g. mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.5_224_no_top.h5) "
        "fetched on a machine with a network",
    )
    weights: Path | None = Field(None, description="a weights file (.h5 / .weights.h5) of the whole model to start from")
    path: Path | None = Field(
        None,
        description="a saved model (.keras, .h5, SavedModel) to use as is; a teacher "
        "may also be a .tflite, which can only teach (distill first)",
    )
    trust_model_code: bool = Field(False, description="allow Lambda layers (arbitrary Python) in `path`")

    @field_validator("weights", "path", "backbone_weights")
    @classmethod
    def _resolve_file(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        if value is None or value == "imagenet":
            return value
        resolved = resolve_path(value, info)
        if not resolved.exists():
            raise ValueError(f"file not found: {resolved}. Received: {info.field_name}={str(value)!r}")
        return resolved

    @model_validator(mode="after")
    def _arch_or_path(self) -> ModelSpec:
        if (self.arch is None) == (self.path is None):
            raise ValueError(
                "set exactly one of 'arch' (build from the zoo) or 'path' (load a model file). "
                f"Received: arch={self.arch!r}, path={self.path}"
            )
        if self.minimalistic and not self.backbone.startswith("mobilenet_v3"):
            raise ValueError(f"minimalistic is a MobileNetV3 variant. Received: backbone={self.backbone!r}")
        if self.backbone_weights is not None and self.weights is not None:
            raise ValueError(
                "backbone_weights and weights both set the backbone; keep one. "
                f"Received: backbone_weights={str(self.backbone_weights)!r}, weights={str(self.weights)!r}"
            )
        return self


def model_from_name(name: str) -> ModelSpec:
    """A zoo model named `arch-alpha` or `arch-alpha-osN` (MobileNetV2), e.g. `minimal-0.5-os32`: how
    the benchmark's naive family and the cost tool name models."""
    parts = name.split("-")
    try:
        if not 2 <= len(parts) <= 3 or (len(parts) == 3 and not parts[2].startswith("os")):
            raise ValueError
        stride = {"output_stride": int(parts[2].removeprefix("os"))} if len(parts) == 3 else {}
        return ModelSpec.model_validate({"arch": parts[0], "alpha": float(parts[1]), **stride})
    except ValueError:  # pydantic's ValidationError is one
        raise RecipeError(
            f"a zoo model name is arch-alpha or arch-alpha-osN, e.g. minimal-0.5-os32. Received: {name!r}"
        ) from None


def split_input_size(name: str) -> tuple[str, tuple[int, int] | None]:
    """A model name that may end in `@HxW`, the model's own input size (`lraspp-0.35@144x192`): the
    name before the `@` and (height, width), or None without one. How the benchmark's naive family
    and the cost tool give one model another resolution than the rest."""
    model, at, size = name.partition("@")
    if not at:
        return name, None
    height, _, width = size.partition("x")
    if not (height.isdigit() and width.isdigit() and int(height) > 0 and int(width) > 0):
        raise RecipeError(f"{name}: expected an input size HxW after '@', e.g. 144x192. Received: {size!r}")
    return model, (int(height), int(width))
