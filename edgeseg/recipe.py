"""The recipe: one YAML file that drives one run, validated completely before anything runs.

Example:
    >>> recipe = load_recipe("recipes/quickstart.yaml")
    >>> [name for name, _ in recipe.stage_items()]
    ['train', 'distill', 'prune', 'cluster', 'quantize', 'verify', 'export']
"""

from __future__ import annotations

import difflib
import reprlib
import hashlib
import json
import re
import types
import typing
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal, Union

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    create_model,
    field_validator,
    model_validator,
)

from edgeseg.errors import RecipeError

Arch = Literal["deeplabv3plus", "lraspp"]
Backbone = Literal["mobilenet_v2", "mobilenet_v3_small", "mobilenet_v3_large"]
MAX_OUTPUT_STRIDE = 16
_REPR = reprlib.Repr()  # bounded depth and length: recipes can hold arbitrarily nested junk
_REPR.maxlevel, _REPR.maxstring, _REPR.maxother = 3, 60, 60


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


def is_teach_only(path) -> bool:
    """A `.tflite`, or a SavedModel folder not written by tf_keras (Keras 3's `export`, plain
    TensorFlow): a model that can give logits but not be trained here."""
    path = Path(path)
    if path.suffix == ".tflite":
        return True
    return path.is_dir() and (path / "saved_model.pb").is_file() and not (path / "keras_metadata.pb").is_file()


def _resolve_path(path: Path, info: ValidationInfo) -> Path:
    """Resolves `path` against the recipe's folder (the validation context's base_dir)."""
    try:
        expanded = path.expanduser()
    except RuntimeError:
        raise ValueError(f"cannot expand '~' in the path. Received: {info.field_name}={str(path)!r}") from None
    return (Path((info.context or {}).get("base_dir", ".")) / expanded).resolve()


def _resolve_folder(folder: Path, info: ValidationInfo, what: str = "folder") -> Path:
    """`_resolve_path` for a key that names a folder, which must exist."""
    resolved = _resolve_path(folder, info)
    if not resolved.is_dir():
        raise ValueError(f"{what} not found: {resolved}. Received: {info.field_name}={str(folder)!r}")
    return resolved


# ----------------------------------------------------------------------------- data


class AugmentConfig(_Section):
    """Training-time augmentation; validation data is never augmented."""

    hflip: bool = True
    scale: tuple[float, float] = Field((0.75, 1.5), description="random zoom range [low, high]")
    brightness: float = Field(0.1, ge=0, le=1, description="max brightness shift, fraction of 255")
    contrast: float = Field(0.1, ge=0, lt=1, description="max contrast change, fraction")

    @field_validator("scale")
    @classmethod
    def _ordered_scale(cls, scale: tuple[float, float]) -> tuple[float, float]:
        if not 0 < scale[0] <= scale[1]:
            raise ValueError(f"expected 0 < low <= high. Received: scale={list(scale)}")
        return scale


class _DataCommon(_Section):
    input_size: tuple[int, int] = Field((64, 64), description="model input [height, width]")
    batch_size: int = Field(16, ge=1)
    augment: AugmentConfig | None = AugmentConfig()
    unlabeled: Path | None = Field(
        None, description="a folder of images without labels; `distill` adds them to its training images, where "
                          "the student learns from the teacher's logits alone")

    @field_validator("unlabeled")
    @classmethod
    def _resolve_unlabeled(cls, folder: Path | None, info: ValidationInfo) -> Path | None:
        return None if folder is None else _resolve_folder(folder, info)

    @field_validator("input_size")
    @classmethod
    def _divisible_size(cls, size: tuple[int, int]) -> tuple[int, int]:
        if any(side < 32 or side % MAX_OUTPUT_STRIDE for side in size):
            raise ValueError(
                f"each side must be >= 32 and a multiple of {MAX_OUTPUT_STRIDE} (the models' "
                f"output stride). Received: input_size={list(size)}"
            )
        return size


class SyntheticData(_DataCommon):
    """Procedural scenes, generated from the seed: no files needed."""

    format: Literal["synthetic"]
    num_classes: int = Field(4, ge=4, le=6)
    num_train: int = Field(384, ge=8)
    num_val: int = Field(96, ge=4)

    @property
    def classes(self) -> list[str]:
        from edgeseg.data.synthetic import SYNTHETIC_CLASS_NAMES

        return list(SYNTHETIC_CLASS_NAMES[: self.num_classes])

    @property
    def ignore_index(self) -> int:
        return 255

    palette: ClassVar[None] = None
    label_map: ClassVar[None] = None


class FolderData(_DataCommon):
    """`<root>/<split>/images/*` paired by stem with `<root>/<split>/labels/*.png`."""

    format: Literal["folder"]
    root: Path
    train: str = "train"
    val: str = "val"
    classes: list[str] | None = Field(None, description="class names; default: root/dataset.json")
    ignore_index: int | None = Field(
        None, ge=0, le=255, description="label value to ignore; default: dataset.json or 255"
    )
    label_map: dict[int, int] | None = Field(None, description="raw label value -> class id")
    palette: list[tuple[int, int, int]] | None = Field(
        None, description="RGB color of each class id, for color-coded label PNGs"
    )

    @field_validator("root")
    @classmethod
    def _resolve_root(cls, root: Path, info: ValidationInfo) -> Path:
        return _resolve_folder(root, info, "dataset folder")

    @model_validator(mode="after")
    def _classes_and_ignore_index(self) -> FolderData:
        manifest_path = self.root / "dataset.json"
        manifest: dict[str, Any] = {}
        if manifest_path.is_file() and (self.classes is None or self.ignore_index is None):
            try:
                manifest = json.loads(manifest_path.read_text())
            except (OSError, ValueError) as error:
                raise ValueError(f"cannot read {manifest_path}: {error}") from None
            if not isinstance(manifest, dict):
                raise ValueError(f"{manifest_path}: expected a JSON object. Received: {_short(manifest)}")
        if self.classes is None:
            if not isinstance(manifest.get("classes"), list):
                raise ValueError(
                    f"data.classes is not set and {manifest_path} has no 'classes' list; "
                    "name the classes in the recipe"
                )
            self.classes = [str(name) for name in manifest["classes"]]
        if self.ignore_index is None:
            self.ignore_index = manifest.get("ignore_index", 255)
            if type(self.ignore_index) is not int or not 0 <= self.ignore_index <= 255:
                raise ValueError(
                    f"{manifest_path}: ignore_index must be an integer 0..255. Received: {_short(self.ignore_index)}"
                )
        num_classes = len(self.classes)
        if num_classes < 2:
            raise ValueError(f"data.classes needs at least 2 classes. Received: classes={self.classes}")
        if 0 <= self.ignore_index < num_classes:
            raise ValueError(
                f"data.ignore_index must not be a class id (0..{num_classes - 1}). "
                f"Received: ignore_index={self.ignore_index}"
            )
        if self.palette is not None and len(self.palette) != num_classes:
            raise ValueError(
                f"data.palette needs one color per class ({num_classes}). "
                f"Received: {len(self.palette)} colors"
            )
        if self.palette is not None and self.label_map is not None:
            raise ValueError("data.palette and data.label_map are exclusive: set one of them")
        for raw_value, class_id in (self.label_map or {}).items():
            if not 0 <= raw_value <= 255:
                raise ValueError(f"data.label_map keys are 8-bit label values 0..255. Received: {raw_value}")
            if not (0 <= class_id < num_classes or class_id == self.ignore_index):
                raise ValueError(
                    f"data.label_map[{raw_value}] must be a class id 0..{num_classes - 1} or "
                    f"ignore_index {self.ignore_index}. Received: {class_id}"
                )
        return self

    @property
    def num_classes(self) -> int:
        return len(self.classes)


DataConfig = Annotated[Union[SyntheticData, FolderData], Field(discriminator="format")]


# ----------------------------------------------------------------------------- models


class ModelSpec(_Section):
    """A zoo model by name, or a model file given by `path`."""

    arch: Arch | None = None
    backbone: Backbone = "mobilenet_v2"
    alpha: float = Field(1.0, ge=0.35, le=1.4, description="MobileNet width multiplier")
    output_stride: Literal[8, 16] = 16
    minimalistic: bool = Field(False, description="MobileNetV3 without squeeze-excite, hard-swish and 5x5 kernels")
    backbone_weights: Literal["imagenet"] | Path | None = Field(
        None, description="imagenet: keras.applications' ImageNet weights for the backbone, downloaded by Keras; or "
                          "that weights file (e.g. mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.5_224_no_top.h5) "
                          "fetched on a machine with a network")
    weights: Path | None = Field(None, description="a weights file (.h5 / .weights.h5) of the whole model to start from")
    path: Path | None = Field(None, description="a saved model (.keras, .h5, SavedModel) to use as is; a teacher "
                                                 "may also be a .tflite, which can only teach (distill first)")
    trust_model_code: bool = Field(False, description="allow Lambda layers (arbitrary Python) in `path`")

    @field_validator("weights", "path", "backbone_weights")
    @classmethod
    def _resolve_file(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        if value is None or value == "imagenet":
            return value
        resolved = _resolve_path(value, info)
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
            raise ValueError("backbone_weights and weights both set the backbone; keep one. "
                             f"Received: backbone_weights={str(self.backbone_weights)!r}, weights={str(self.weights)!r}")
        return self


# ----------------------------------------------------------------------------- stages


class FitConfig(_Section):
    """Options shared by every stage that trains."""

    epochs: int = Field(10, ge=1)
    lr: float = Field(2e-3, gt=0, description="peak learning rate")
    optimizer: Literal["adam", "sgd"] = "adam"
    schedule: Literal["cosine", "poly", "constant"] = Field(
        "cosine", description="learning rate after warm-up: cosine to 0, poly (power 0.9) to 0, or constant")
    warmup_epochs: int = Field(0, ge=0)
    tensorboard: bool = Field(True, description="TensorBoard logs (loss, val mIoU, learning rate) in <stage folder>/logs")

    @model_validator(mode="after")
    def _warmup_shorter_than_training(self) -> FitConfig:
        if self.warmup_epochs >= self.epochs:
            raise ValueError(
                f"warmup_epochs must be less than epochs ({self.epochs}). "
                f"Received: warmup_epochs={self.warmup_epochs}"
            )
        return self


class _StopsEarly(_Section):
    early_stopping: int | None = Field(
        None, ge=1, description="stop after this many epochs without a better val mIoU (the best epoch is kept)")


class TrainConfig(FitConfig, _StopsEarly):
    class_weights: Literal["median_frequency"] | list[Annotated[float, Field(ge=0)]] | None = Field(
        None, description="per-class loss weights: a list by class id, or median_frequency from the train labels")
    ohem: float | None = Field(
        None, gt=0, le=1, description="online hard example mining: learn from this hardest fraction of labeled pixels per batch")


class LogitDistillation(_Section):
    """The loss on the teacher's logits, mixed with cross-entropy on the labels."""

    temperature: float = Field(2.0, gt=0)
    kd_weight: float = Field(0.5, ge=0, le=1, description="weight of the KD term; 1 - kd_weight goes to CE")
    kd_loss: Literal["kl", "cwd"] = Field(
        "kl", description="kl: per-pixel KL over classes; cwd: channel-wise distillation, KL over each class map's "
                          "spatial softmax (Shu et al. 2021)")


class DistillConfig(FitConfig, _StopsEarly, LogitDistillation):
    feature_weight: float = Field(
        0.0, ge=0, description="weight of feature distillation, added to the loss: mean squared error between the "
                               "teacher's features and the student's through a trained 1x1 adapter; 0: off")
    feature_stride: Literal[4, 8, 16, 32] = Field(
        16, description="feature distillation: both models' last backbone layer at this stride (zoo models)")
    feature_layers: tuple[str, str] | None = Field(
        None, description="feature distillation: [teacher layer, student layer] by name, for models not from the zoo")


class LayerSelection(_Section):
    """Which layers `prune` and `cluster` touch. Patterns are regular expressions searched in each
    layer's name and its class name. edgeseg compresses Conv2D and Dense kernels (TF-MOT lists no
    weight of DepthwiseConv2D)."""

    layers: list[str] | None = Field(
        None, description="compress only layers matching one of these; default: pointwise and full convolutions "
                          "except the first convolution and the logit layers")
    skip_layers: list[str] = Field(default_factory=list, description="never compress layers matching one of these")

    @field_validator("layers", "skip_layers")
    @classmethod
    def _patterns_compile(cls, patterns):
        for pattern in patterns or []:
            try:
                re.compile(pattern)
            except re.error as error:
                raise ValueError(f"not a regular expression ({error}). Received: {pattern!r}") from None
        return patterns


class _TeacherGuided(_Section):
    distill: LogitDistillation | None = Field(
        None, description="fine-tune on the teacher's logits as well as the labels (the teacher the 'distill' stage "
                          "learned from), so compression keeps what distillation gained; `distill: {}` for the defaults")


class PruneConfig(FitConfig, LayerSelection, _TeacherGuided):
    epochs: int = Field(2, ge=1)
    lr: float = Field(5e-4, gt=0)
    target_sparsity: float = Field(0.5, gt=0, lt=1)
    sparsity_schedule: Literal["polynomial", "constant"] = Field(
        "polynomial", description="polynomial: ramp from 0 to the target over the first 2/3 of the steps; "
                                  "constant: the target from the first step")
    m_by_n: tuple[int, int] | None = Field(
        None, description="structured sparsity: at least m zeros in every n consecutive input weights, e.g. [2, 4]")

    @model_validator(mode="after")
    def _m_by_n_sets_the_target(self) -> PruneConfig:
        if self.m_by_n is None:
            return self
        m, n = self.m_by_n
        if not 0 < m < n:
            raise ValueError(f"m_by_n needs 0 < m < n. Received: m_by_n={list(self.m_by_n)}")
        if "target_sparsity" in self.model_fields_set and abs(self.target_sparsity - m / n) > 1e-9:
            raise ValueError(f"m_by_n {m}:{n} prunes {m / n:g} of the weights; drop target_sparsity or set it to {m / n:g}. "
                             f"Received: target_sparsity={self.target_sparsity}")
        self.target_sparsity = m / n
        return self


class ClusterConfig(FitConfig, LayerSelection, _TeacherGuided):
    epochs: int = Field(1, ge=1)
    lr: float = Field(1e-4, gt=0)
    clusters: int = Field(16, ge=2, le=256)
    preserve_sparsity: bool = True
    init: Literal["kmeans++", "linear", "density", "random"] = Field("kmeans++", description="centroid initialization")
    per_channel: bool = Field(False, description="clusters of their own for each output channel of a Conv2D")


class QatConfig(FitConfig):
    """Quantization-aware fine-tuning before the int8 conversion (TF-MOT; PQAT/CQAT/PCQAT after prune/cluster)."""

    epochs: int = Field(2, ge=1)
    lr: float = Field(1e-4, gt=0)


class QuantizeConfig(_Section):
    mode: Literal["int8", "int16x8", "float16", "dynamic", "auto"] = Field(
        "int8", description="int8: full integer, uint8 camera bytes in (for phones' NPUs and XNNPACK); int16x8: "
                            "16-bit activations, int8 weights, float in/out; float16: half-precision weights (GPU "
                            "delegates); dynamic: int8 weights, float activations; auto: int8, then repairs in "
                            "order until the val mIoU drop is within max_miou_drop: more calibration images, the "
                            "most sensitive layers in float, int16x8, QAT")
    calibration_images: int = Field(100, ge=1)
    output_type: Literal["int8", "uint8"] = Field(
        "int8", description="int8 and auto: the logits' integer type; uint8 for runtimes and NPUs that take "
                            "only unsigned tensors (the same values, shifted by 128 in zero point)")
    qat: QatConfig | None = Field(
        None, description="int8: fine-tune quantization-aware before converting (`qat: {}` for the defaults); "
                          "auto: the settings of its last repair")
    max_miou_drop: float | None = Field(
        None, ge=0, le=1, description="auto: the budget each attempt must meet; default: verify.max_miou_drop")
    float_layers: int = Field(3, ge=1, le=20, description="auto: at most this many sensitive layers kept in float")

    @model_validator(mode="after")
    def _options_match_mode(self) -> QuantizeConfig:
        if self.qat is not None and self.mode not in ("int8", "auto"):
            raise ValueError(f"qat needs mode int8 or auto: QAT trains for full-integer int8. Received: mode={self.mode!r}")
        if self.output_type != "int8" and self.mode not in ("int8", "auto"):
            raise ValueError(f"output_type is the integer type of full-int8 logits; mode {self.mode} has float logits. "
                             f"Received: mode={self.mode!r}, output_type={self.output_type!r}")
        if self.mode != "auto" and self.max_miou_drop is not None:
            raise ValueError(f"max_miou_drop is the budget of mode auto; set verify.max_miou_drop to gate other modes. "
                             f"Received: mode={self.mode!r}")
        return self


class VerifyConfig(_Section):
    """Scoring of the `.tflite` next to the float model, and the gates it must pass to be exported."""

    min_miou: float | None = Field(None, ge=0, le=1, description="gate: int8 mIoU at least this")
    max_miou_drop: float | None = Field(None, ge=0, le=1, description="gate: float mIoU minus int8 mIoU at most this")
    max_class_iou_drop: float | None = Field(None, ge=0, le=1, description="gate: per-class IoU drop at most this")
    max_latency_ms: float | None = Field(None, gt=0, description="gate: median interpreter latency at `threads`")
    max_size_kb: float | None = Field(None, gt=0, description="gate: .tflite size in KiB")
    threads: int = Field(2, ge=1, description="interpreter threads for scoring and the latency gate")
    latency_runs: int = Field(30, ge=1, description="timed invokes per thread count, after 5 warm-up ones")
    gallery_images: int = Field(4, ge=0, le=16, description="val images in the overlay gallery")
    debug_layers: int = Field(
        0, ge=0, le=20, description="int8 only: run the quantization debugger and report this many worst layers, "
                                    "each with the mIoU the model gets when that layer stays in float")


class DistributeConfig(_Section):
    """Training stages on several devices with tf.distribute (edgeseg.distribution)."""

    strategy: Literal["mirrored", "multi_worker"] = Field(
        description="mirrored: the devices of this machine; multi_worker: several machines, each started with "
                    "its TF_CONFIG")
    devices: list[str] | None = Field(
        None, min_length=1, description="mirrored: e.g. [/gpu:0, /gpu:1]; default every GPU, else the CPU. More CPU "
                                        "devices than the machine has split its CPU into logical devices")

    @model_validator(mode="after")
    def _devices_are_mirrored(self) -> DistributeConfig:
        if self.devices is not None and self.strategy != "mirrored":
            raise ValueError("devices picks the replicas of mirrored; multi_worker takes them from TF_CONFIG. "
                             f"Received: strategy={self.strategy!r}, devices={self.devices}")
        return self


class ExportConfig(_Section):
    output: Literal["logits", "labels"] = Field(
        "logits", description="logits: [1, H, W, C] scores; labels: uint8 class ids [1, H, W], the argmax taken "
                              "before the head's last upsample (cheaper, blockier borders; docs/MODELS.md)")


STAGE_CONFIGS: dict[str, type[_Section]] = {
    "train": TrainConfig,
    "distill": DistillConfig,
    "prune": PruneConfig,
    "cluster": ClusterConfig,
    "quantize": QuantizeConfig,
    "verify": VerifyConfig,
    "export": ExportConfig,
}
MODEL_CHANGING_STAGES = ("train", "distill", "prune", "cluster")
TFLITE_READING_STAGES = ("verify", "export")


def _stage_entry(name: str, config_class: type[_Section]) -> type[BaseModel]:
    def empty_means_defaults(cls, value):
        return {} if value is None else value

    return create_model(
        f"{name.capitalize()}Stage",
        __config__=ConfigDict(extra="forbid"),
        __validators__={"_defaults": field_validator(name, mode="before")(empty_means_defaults)},
        **{name: (config_class, ...)},
    )


def _stage_tag(value: Any) -> str | None:
    if isinstance(value, dict) and len(value) == 1:
        (name,) = value
        return name if name in STAGE_CONFIGS else None
    if isinstance(value, BaseModel):
        return next(iter(type(value).model_fields))
    return None


StageEntry = Annotated[
    Union[tuple(Annotated[_stage_entry(n, c), Tag(n)] for n, c in STAGE_CONFIGS.items())],
    Discriminator(_stage_tag, custom_error_type="unknown_stage", custom_error_message="unknown stage"),
]


# ----------------------------------------------------------------------------- recipe


class Recipe(_Section):
    """A validated recipe. Build one with `load_recipe(path)`."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", description="run name: runs/<name>/")
    seed: int = Field(0, ge=0, le=2**31 - 1)
    data: DataConfig
    teacher: ModelSpec
    student: ModelSpec | None = None
    distribute: DistributeConfig | None = Field(None, description="train, distill, prune and cluster on several devices")
    stages: list[StageEntry] = Field(min_length=1)

    def stage_items(self) -> list[tuple[str, _Section]]:
        """The stages in recipe order as (name, config) pairs."""
        return [(_stage_tag(entry), getattr(entry, _stage_tag(entry))) for entry in self.stages]

    @property
    def hash(self) -> str:
        canonical = json.dumps(self.model_dump(mode="json"), sort_keys=True)
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]

    @model_validator(mode="after")
    def _stage_order(self) -> Recipe:
        names = [name for name, _ in self.stage_items()]
        for index, name in enumerate(names):
            if name in names[:index]:
                raise ValueError(f"stages[{index}]: '{name}' appears twice; each stage runs once")
        if "quantize" in names:
            quantize_at = names.index("quantize")
            for index, name in enumerate(names[quantize_at + 1 :], start=quantize_at + 1):
                if name in MODEL_CHANGING_STAGES:
                    raise ValueError(
                        f"stages[{index}]: '{name}' changes the model, so it must come before "
                        f"'quantize' (stages[{quantize_at}])"
                    )
        if "verify" in names and "export" in names and names.index("export") < names.index("verify"):
            raise ValueError("stages: 'export' must come after 'verify', so a model that fails a gate is never exported")
        for index, name in enumerate(names):
            if name in TFLITE_READING_STAGES and "quantize" not in names[:index]:
                raise ValueError(f"stages[{index}]: '{name}' reads the .tflite, so a 'quantize' stage must come first")
        for index, (name, cfg) in enumerate(self.stage_items()):
            weights = getattr(cfg, "class_weights", None)
            if isinstance(weights, list) and len(weights) != len(self.data.classes):
                raise ValueError(f"stages[{index}].{name}.class_weights: expected one weight per class "
                                 f"({len(self.data.classes)}). Received: {len(weights)} weights")
        stage_configs = dict(self.stage_items())
        quantize = stage_configs.get("quantize")
        if quantize is not None and quantize.mode == "auto" and quantize.max_miou_drop is None \
                and getattr(stage_configs.get("verify"), "max_miou_drop", None) is None:
            raise ValueError(f"stages[{names.index('quantize')}].quantize: mode auto needs a budget: set "
                             "quantize.max_miou_drop or verify.max_miou_drop")
        for index, (name, cfg) in enumerate(self.stage_items()):
            if getattr(cfg, "distill", None) is not None and "distill" not in names[:index]:
                raise ValueError(f"stages[{index}].{name}.distill: the fine-tune learns from the teacher a 'distill' "
                                 f"stage distilled from, so one must come before '{name}'. Received: stages={names}")
        if self.data.unlabeled is not None and "distill" not in names:
            raise ValueError("data.unlabeled: unlabeled images are learned from a teacher, so they need a 'distill' stage. "
                             f"Received: unlabeled={str(self.data.unlabeled)!r}")
        if "distill" in names and self.student is None:
            raise ValueError("stages has 'distill' but no 'student' is defined: add a student section")
        if "distill" not in names and self.student is not None:
            raise ValueError("a 'student' is defined but no 'distill' stage uses it: add one or remove the student")
        model_changing = [name for name in names if name in MODEL_CHANGING_STAGES]
        trains_teacher_first = bool(model_changing) and model_changing[0] == "train"
        if self.teacher.path is not None and is_teach_only(self.teacher.path) and model_changing[:1] != ["distill"]:
            raise ValueError(f"teacher.path is a .tflite or a SavedModel not saved by tf_keras, which can only teach: "
                             f"'distill' must be the first stage that changes the model. Received: stages {names}")
        if self.student is not None and self.student.path is not None and is_teach_only(self.student.path):
            raise ValueError("student.path can only teach (a .tflite or a SavedModel not saved by tf_keras); a student "
                             f"must be trainable: give a .keras, .h5 or tf_keras SavedModel. Received: student.path={self.student.path}")
        if self.teacher.path is None and self.teacher.weights is None and not trains_teacher_first:
            raise ValueError(
                "the teacher has no weights: add a 'train' stage before the others, "
                "or set teacher.path / teacher.weights"
            )
        return self


# ----------------------------------------------------------------------------- loading


def load_recipe(path: str | Path) -> Recipe:
    """Reads and validates a recipe; every problem is a `RecipeError` naming the YAML key.

    Example:
        >>> recipe = load_recipe("recipes/quickstart.yaml")
        >>> recipe.data.format
        'synthetic'
    """
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as error:
        raise RecipeError(f"{path}: cannot read recipe: {error.strerror or error}") from None
    try:
        raw = yaml.safe_load(text)
    except RecursionError:
        raise RecipeError(f"{path}: YAML nested too deeply") from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f":{mark.line + 1}:{mark.column + 1}" if mark else ""
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]
        raise RecipeError(f"{path}{where}: not valid YAML: {problem}") from None
    if not isinstance(raw, dict):
        raise RecipeError(f"{path}: expected a mapping of recipe sections. Received: {_short(raw)}")
    return parse_recipe(raw, base_dir=path.parent, source=str(path))


def parse_recipe(raw: dict, base_dir: str | Path = ".", source: str = "<recipe>") -> Recipe:
    """Validates an already-parsed recipe mapping; relative paths resolve against `base_dir`."""
    return _validated(lambda: Recipe.model_validate(raw, context={"base_dir": Path(base_dir)}), (), source)


def parse_data(raw: dict, base_dir: str | Path = ".", source: str = "<data>") -> SyntheticData | FolderData:
    """Validates a `data:` section on its own, e.g. for `edgeseg eval`."""
    adapter = TypeAdapter(DataConfig)
    return _validated(lambda: adapter.validate_python(raw, context={"base_dir": Path(base_dir)}), ("data",), source)


def _validated(validate, loc_prefix: tuple, source: str):
    try:
        return validate()
    except ValidationError as error:
        problems = [_describe_problem({**p, "loc": loc_prefix + tuple(p["loc"])}) for p in error.errors()]
        # Whole-recipe checks already name their stages[i] in the message.
        problems = [line.removeprefix("recipe: ") for line in problems]
        raise RecipeError("\n".join(f"{source}: {line}" for line in problems)) from None
    except (TypeError, ValueError, RecursionError) as error:  # e.g. unhashable YAML keys
        raise RecipeError(f"{source}: malformed recipe: {error}") from None


def recipe_json_schema() -> dict:
    """The JSON Schema of a recipe, for editors' completion and validation."""
    return Recipe.model_json_schema()


def _describe_problem(problem: dict) -> str:
    key_path, _ = _walk_location(problem["loc"])
    kind, received = problem["type"], problem.get("input")
    message = problem["msg"].removeprefix("Value error, ")
    if kind == "extra_forbidden":
        key = str(problem["loc"][-1])
        parent_path, allowed_keys = _walk_location(problem["loc"][:-1])
        return f"{key_path}: unknown key {key!r} in {parent_path}{_did_you_mean(key, allowed_keys)}"
    if kind == "missing":
        return f"{key_path}: required key is missing"
    if kind == "unknown_stage":
        given = list(received) if isinstance(received, dict) else received
        if isinstance(received, dict) and len(received) == 1:
            (name,) = received
            hint = _did_you_mean(str(name), list(STAGE_CONFIGS))
            return f"{key_path}: unknown stage {str(name)!r}{hint}; stages are: {', '.join(STAGE_CONFIGS)}"
        return f"{key_path}: expected one `stage_name: {{options}}` mapping. Received: {_short(given)}"
    if kind == "literal_error" and isinstance(received, str):
        expected = re.findall(r"'([^']*)'", str(problem.get("ctx", {}).get("expected", "")))
        return f"{key_path}: {message}{_did_you_mean(received, expected)}. Received: {_short(received)}"
    if "Received:" in message or isinstance(received, dict):
        return f"{key_path}: {message}"
    return f"{key_path}: {message}. Received: {_short(received)}"


def _walk_location(loc: tuple) -> tuple[str, list[str]]:
    """Turns a pydantic error location into a YAML key path, and lists the keys allowed there."""
    candidates: list[Any] = [Recipe]
    shown = ""
    for part in loc:
        models = [c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)]
        if isinstance(part, int):
            shown += f"[{part}]"
            candidates = [inner for c in candidates for inner in _unwrap(c, through_lists=True)]
            continue
        if len(models) > 1:  # a union member's tag, not a key the user wrote
            candidates = [m for m in models if _union_tag(m) == part] or models
            continue
        key = part if str(part).isidentifier() else repr(part)
        shown += f".{key}" if shown else key
        field = models[0].model_fields.get(part) if models else None
        candidates = _unwrap(field.annotation) if field else []
    models = [c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)]
    return shown or "recipe", [key for model in models for key in model.model_fields]


def _unwrap(annotation: Any, through_lists: bool = False) -> list[Any]:
    origin = typing.get_origin(annotation)
    if origin is Annotated:
        return _unwrap(typing.get_args(annotation)[0], through_lists)
    if origin in (Union, types.UnionType):
        return [m for arg in typing.get_args(annotation) for m in _unwrap(arg, through_lists)]
    if through_lists and origin is list:
        return _unwrap(typing.get_args(annotation)[0])
    return [annotation]


def _union_tag(model: type[BaseModel]) -> str | None:
    format_field = model.model_fields.get("format")
    if format_field is not None:
        return typing.get_args(format_field.annotation)[0]
    return next(iter(model.model_fields)) if len(model.model_fields) == 1 else None


def _did_you_mean(word: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _short(value: Any, limit: int = 80) -> str:
    text = _REPR.repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
