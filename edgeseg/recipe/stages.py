"""One section per stage a recipe can list, and `distribute:`, which the training stages read."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from edgeseg.recipe.base import Section, names_the_model


def compiled_patterns(patterns: list[str] | None) -> list[str] | None:
    """`patterns` as given, once each is known to be a regular expression."""
    for pattern in patterns or []:
        try:
            re.compile(pattern)
        except re.error as error:
            raise ValueError(f"not a regular expression ({error}). Received: {pattern!r}") from None
    return patterns


class FitConfig(Section):
    """Options shared by every stage that trains."""

    epochs: int = Field(10, ge=1)
    lr: float = Field(2e-3, gt=0, description="peak learning rate")
    optimizer: Literal["adam", "sgd"] = "adam"
    schedule: Literal["cosine", "poly", "constant"] = Field(
        "cosine", description="learning rate after warm-up: cosine to 0, poly (power 0.9) to 0, or constant"
    )
    warmup_epochs: int = Field(0, ge=0)
    lovasz_weight: float = Field(
        0.0,
        ge=0,
        description="weight of the Lovasz-softmax loss (a surrogate of each class's IoU, Berman et al. 2018) added "
        "to cross-entropy on the labels; 0: cross-entropy alone",
    )
    tensorboard: bool = Field(True, description="TensorBoard logs (loss, val mIoU, learning rate) in <stage folder>/logs")

    @model_validator(mode="after")
    def _warmup_shorter_than_training(self) -> FitConfig:
        if self.warmup_epochs >= self.epochs:
            raise ValueError(
                f"warmup_epochs must be less than epochs ({self.epochs}). Received: warmup_epochs={self.warmup_epochs}"
            )
        return self


class _StopsEarly(Section):
    early_stopping: int | None = Field(
        None, ge=1, description="stop after this many epochs without a better val mIoU (the best epoch is kept)"
    )


class TrainConfig(FitConfig, _StopsEarly):
    class_weights: Literal["median_frequency"] | list[Annotated[float, Field(ge=0)]] | None = Field(
        None, description="per-class loss weights: a list by class id, or median_frequency from the train labels"
    )
    ohem: float | None = Field(
        None, gt=0, le=1, description="online hard example mining: learn from this hardest fraction of labeled pixels per batch"
    )


class LogitDistillation(Section):
    """The loss on the teacher's logits, mixed with cross-entropy on the labels."""

    temperature: float = Field(2.0, gt=0)
    kd_weight: float = Field(0.5, ge=0, le=1, description="weight of the KD term; 1 - kd_weight goes to CE")
    kd_loss: Literal["kl", "cwd"] = Field(
        "kl",
        description="kl: per-pixel KL over classes; cwd: channel-wise distillation, KL over each class map's "
        "spatial softmax (Shu et al. 2021)",
    )


class DistillConfig(FitConfig, _StopsEarly, LogitDistillation):
    feature_weight: float = Field(
        0.0,
        ge=0,
        description="weight of feature distillation, added to the loss: mean squared error between the "
        "teacher's features and the student's through a trained 1x1 adapter; 0: off",
    )
    feature_stride: Literal[4, 8, 16, 32] = Field(
        16, description="feature distillation: both models' last backbone layer at this stride (zoo models)"
    )
    feature_layers: tuple[str, str] | None = Field(
        None, description="feature distillation: [teacher layer, student layer] by name, for models not from the zoo"
    )


class LayerSelection(Section):
    """Which layers `prune` and `cluster` touch. Patterns are regular expressions searched in each
    layer's name and its class name. edgeseg compresses Conv2D and Dense kernels (TF-MOT lists no
    weight of DepthwiseConv2D)."""

    layers: list[str] | None = Field(
        None,
        description="compress only layers matching one of these; default: pointwise and full convolutions "
        "except the first convolution and the logit layers",
    )
    skip_layers: list[str] = Field(default_factory=list, description="never compress layers matching one of these")

    @field_validator("layers", "skip_layers")
    @classmethod
    def _patterns_compile(cls, patterns: list[str] | None) -> list[str] | None:
        return compiled_patterns(patterns)


class _TeacherGuided(Section):
    distill: LogitDistillation | None = Field(
        None,
        description="fine-tune on the teacher's logits as well as the labels (the teacher the 'distill' stage "
        "learned from), so compression keeps what distillation gained; `distill: {}` for the defaults",
    )


class PruneConfig(FitConfig, LayerSelection, _TeacherGuided):
    epochs: int = Field(2, ge=1)
    lr: float = Field(5e-4, gt=0)
    target_sparsity: float = Field(0.5, gt=0, lt=1)
    sparsity_schedule: Literal["polynomial", "constant"] = Field(
        "polynomial",
        description="polynomial: ramp from 0 to the target over the first 2/3 of the steps; "
        "constant: the target from the first step",
    )
    m_by_n: tuple[int, int] | None = Field(
        None, description="structured sparsity: at least m zeros in every n consecutive input weights, e.g. [2, 4]"
    )

    @model_validator(mode="after")
    def _m_by_n_sets_the_target(self) -> PruneConfig:
        if self.m_by_n is None:
            return self
        m, n = self.m_by_n
        if not 0 < m < n:
            raise ValueError(f"m_by_n needs 0 < m < n. Received: m_by_n={list(self.m_by_n)}")
        if "target_sparsity" in self.model_fields_set and abs(self.target_sparsity - m / n) > 1e-9:
            raise ValueError(
                f"m_by_n {m}:{n} prunes {m / n:g} of the weights; drop target_sparsity or set it to {m / n:g}. "
                f"Received: target_sparsity={self.target_sparsity}"
            )
        self.target_sparsity = m / n
        return self


class PruneChannelsConfig(FitConfig, _StopsEarly, _TeacherGuided):
    """Channel pruning: whole channels removed (edgeseg.channel_pruning), so the int8 file is really
    smaller and faster, then a fine-tune that keeps the best val epoch at the final width."""

    epochs: int = Field(10, ge=1, description="fine-tune epochs in all, shared between the steps")
    lr: float = Field(1e-3, gt=0)
    target: Literal["macs", "params", "latency"] = Field(
        "macs",
        description="what `keep` is a fraction of: MACs, parameters, or the int8 file's interpreter latency at `threads` "
        "(measured here, against the unpruned model timed alternately with it, or on a device by `measure_command`)",
    )
    keep: float = Field(0.5, gt=0, lt=1, description="the fraction of the target kept, at most")
    importance: Literal["l1", "l2", "bn_scale", "taylor"] = Field(
        "l1", description="how channels are ranked: filter norms, BatchNorm scale, or first-order Taylor on train batches"
    )
    allocation: Literal["global", "uniform"] = Field(
        "global",
        description="global: one ranking over all groups, so layers lose different fractions; uniform: the "
        "same fraction of every group, a width multiplier, for comparison",
    )
    cost_weighted: bool = Field(False, description="global: rank by importance per MAC or parameter a chunk saves")
    round_to: int = Field(8, ge=1, description="every pruned width a multiple of this (what XNNPACK and phone NPUs like)")
    min_channels: int = Field(8, ge=1)
    steps: int = Field(1, ge=1, le=10, description="prune and fine-tune in this many rounds, each keeping an equal share")
    keep_layers: list[str] = Field(
        default_factory=list,
        description="regular expressions of layers whose channels must not change (the model's input and logits never do)",
    )
    threads: int = Field(2, ge=1, description="target latency: interpreter threads it is measured at")
    measure_command: str | None = Field(
        None,
        description="target latency: a command that times a .tflite on the device instead of this machine's interpreter: "
        "run with the file's path in place of {model}, it prints the median latency in milliseconds as its last line "
        "(as budget.measure_command)",
    )
    taylor_batches: int = Field(8, ge=1, description="importance taylor: train batches it is averaged over")

    @field_validator("keep_layers")
    @classmethod
    def _patterns_compile(cls, patterns: list[str]) -> list[str]:
        return compiled_patterns(patterns) or []

    @field_validator("measure_command")
    @classmethod
    def _names_the_model(cls, command: str | None) -> str | None:
        return names_the_model(command)

    @model_validator(mode="after")
    def _a_command_times_a_latency_target(self) -> PruneChannelsConfig:
        if self.measure_command is not None and self.target != "latency":
            raise ValueError(
                f"measure_command times a latency target: expected target: latency. Received: target={self.target!r}"
            )
        return self

    @model_validator(mode="after")
    def _an_epoch_per_step(self) -> PruneChannelsConfig:
        if self.epochs < self.steps:
            raise ValueError(
                f"each step fine-tunes at least one epoch: expected epochs >= steps ({self.steps}). "
                f"Received: epochs={self.epochs}"
            )
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


class QuantizeConfig(Section):
    mode: Literal["int8", "int16x8", "float16", "dynamic", "auto"] = Field(
        "int8",
        description="int8: full integer, uint8 camera bytes in (for phones' NPUs and XNNPACK); int16x8: "
        "16-bit activations, int8 weights, float in/out; float16: half-precision weights (GPU "
        "delegates); dynamic: int8 weights, float activations; auto: int8, then repairs in "
        "order until the val mIoU drop is within max_miou_drop: more calibration images, the "
        "most sensitive layers in float, int16x8, QAT",
    )
    calibration_images: int = Field(100, ge=1)
    output_type: Literal["int8", "uint8"] = Field(
        "int8",
        description="int8 and auto: the logits' integer type; uint8 for runtimes and NPUs that take "
        "only unsigned tensors (the same values, shifted by 128 in zero point)",
    )
    qat: QatConfig | None = Field(
        None,
        description="int8: fine-tune quantization-aware before converting (`qat: {}` for the defaults); "
        "auto: the settings of its last repair",
    )
    max_miou_drop: float | None = Field(
        None, ge=0, le=1, description="auto: the budget each attempt must meet; default: verify.max_miou_drop"
    )
    float_layers: int = Field(3, ge=1, le=20, description="auto: at most this many sensitive layers kept in float")

    @model_validator(mode="after")
    def _options_match_mode(self) -> QuantizeConfig:
        if self.qat is not None and self.mode not in ("int8", "auto"):
            raise ValueError(f"qat needs mode int8 or auto: QAT trains for full-integer int8. Received: mode={self.mode!r}")
        if self.output_type != "int8" and self.mode not in ("int8", "auto"):
            raise ValueError(
                f"output_type is the integer type of full-int8 logits; mode {self.mode} has float logits. "
                f"Received: mode={self.mode!r}, output_type={self.output_type!r}"
            )
        if self.mode != "auto" and self.max_miou_drop is not None:
            raise ValueError(
                f"max_miou_drop is the budget of mode auto; set verify.max_miou_drop to gate other modes. "
                f"Received: mode={self.mode!r}"
            )
        return self


class VerifyConfig(Section):
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
        0,
        ge=0,
        le=20,
        description="int8 only: run the quantization debugger and report this many worst layers, "
        "each with the mIoU the model gets when that layer stays in float",
    )


class DistributeConfig(Section):
    """Training stages on several devices with tf.distribute (edgeseg.distribution)."""

    strategy: Literal["mirrored", "multi_worker"] = Field(
        description="mirrored: the devices of this machine; multi_worker: several machines, each started with its TF_CONFIG"
    )
    devices: list[str] | None = Field(
        None,
        min_length=1,
        description="mirrored: e.g. [/gpu:0, /gpu:1]; default every GPU, else the CPU. More CPU "
        "devices than the machine has split its CPU into logical devices",
    )

    @model_validator(mode="after")
    def _devices_are_mirrored(self) -> DistributeConfig:
        if self.devices is not None and self.strategy != "mirrored":
            raise ValueError(
                "devices picks the replicas of mirrored; multi_worker takes them from TF_CONFIG. "
                f"Received: strategy={self.strategy!r}, devices={self.devices}"
            )
        return self


class ExportConfig(Section):
    output: Literal["logits", "labels"] = Field(
        "logits",
        description="logits: [1, H, W, C] scores; labels: uint8 class ids [1, H, W], the argmax taken "
        "before the head's last upsample (cheaper, blockier borders; docs/MODELS.md)",
    )


STAGE_CONFIGS: dict[str, type[Section]] = {
    "train": TrainConfig,
    "distill": DistillConfig,
    "prune_channels": PruneChannelsConfig,
    "prune": PruneConfig,
    "cluster": ClusterConfig,
    "quantize": QuantizeConfig,
    "verify": VerifyConfig,
    "export": ExportConfig,
}
MODEL_CHANGING_STAGES = ("train", "distill", "prune_channels", "prune", "cluster")
TFLITE_READING_STAGES = ("verify", "export")


# What a stage inherits from the sections of other stages is resolved once, when the recipe loads,
# into that stage's own settings: a stage reads its settings, never another stage's section.


class QuantizeSettings(QuantizeConfig):
    """`quantize:` with what it inherits: the form `export` ships, and for `mode: auto` the budget
    and scoring threads of `verify`."""

    output: Literal["logits", "labels"] = Field("logits", description="inherited from export.output")
    threads: int = Field(2, ge=1, description="mode auto: inherited from verify.threads")


class VerifySettings(VerifyConfig):
    """`verify:` with what it inherits: the form `export` ships and the calibration count of `quantize`."""

    output: Literal["logits", "labels"] = Field("logits", description="inherited from export.output")
    calibration_images: int = Field(100, ge=1, description="inherited from quantize.calibration_images")


STAGE_SETTINGS: dict[str, type[Section]] = {**STAGE_CONFIGS, "quantize": QuantizeSettings, "verify": VerifySettings}
"""The type of settings each stage is given: its section's type, or the section with what it inherits."""
