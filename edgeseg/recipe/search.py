"""The `budget:` and `search:` sections: what a model must meet on the device, and the space
`edgeseg search` explores to find the best model that meets it."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from edgeseg.recipe.base import Section, names_the_model
from edgeseg.recipe.data import checked_input_size
from edgeseg.recipe.models import Arch, Backbone


class BudgetConfig(Section):
    """Limits on the int8 file a search may pick, measured, and an accuracy floor. Unset: no limit."""

    latency_ms: float | None = Field(
        None,
        gt=0,
        description="median interpreter latency at `threads` in ms: on this machine, timed alternately with the recipe's "
        "own model untrained and scaled to its first timing (or by `measure_command`)",
    )
    latency_vs_recipe: float | None = Field(
        None,
        gt=0,
        description="median latency at most this multiple of the recipe's own model's (its searched model unpruned, "
        "untrained; timed with it on this machine, or both by `measure_command`): 1.0 is 'no slower than the model I "
        "would train by hand'",
    )
    threads: int = Field(2, ge=1, description="interpreter threads the latency is measured at")
    measure_command: str | None = Field(
        None,
        description="a command that times a .tflite on a device instead: run with the file's path in place of {model}, "
        "it prints the median latency in milliseconds as its last line",
    )
    size_kb: float | None = Field(None, gt=0, description="exported int8 file size in KiB, metadata included")
    gzip_kb: float | None = Field(None, gt=0, description="exported int8 file size gzipped, in KiB")
    macs: float | None = Field(None, gt=0, description="multiply-accumulates per image")
    peak_memory_kb: float | None = Field(None, gt=0, description="resident memory the interpreter adds, in KiB")
    min_miou: float | None = Field(None, ge=0, le=1, description="int8 val mIoU at least this")

    @field_validator("measure_command")
    @classmethod
    def _names_the_model(cls, command: str | None) -> str | None:
        return names_the_model(command)


class SearchSpace(Section):
    """The choices a search may combine; each a list (one value: fixed). Architecture choices
    replace the searched model's (the student when the recipe distills, else the teacher)."""

    arch: list[Arch] = Field(["lraspp", "minimal"], min_length=1)
    backbone: list[Backbone] = Field(["mobilenet_v2"], min_length=1)
    alpha: list[float] = Field([0.35, 0.5, 0.75, 1.0], min_length=1)
    output_stride: list[Literal[8, 16, 32]] = Field([8, 16, 32], min_length=1)
    input_size: list[tuple[int, int]] = Field(
        default_factory=list, description="[height, width] choices; default: data.input_size"
    )
    channel_keep: list[float] = Field(
        [1.0],
        min_length=1,
        description="MACs fraction a prune_channels stage keeps, added before the first prune, cluster or quantize "
        "stage, with the recipe's own prune_channels stage's other settings (e.g. importance: taylor) when it has one; "
        "1.0: no channel pruning (the recipe's own prune_channels stage is never run as it stands)",
    )
    quantize: list[Literal["int8", "int16x8", "float16", "dynamic"]] = Field(["int8"], min_length=1)
    sparsity: list[float] = Field(
        default_factory=list,
        description="TF-MOT sparsity of a prune stage (0: none); it shrinks the gzip only, the int8 kernels stay "
        "dense; empty: the recipe's own prune stage, not searched",
    )
    clusters: list[int] = Field(
        default_factory=list,
        description="weight clusters of a cluster stage (0: none); it shrinks the gzip only; empty: the recipe's "
        "own cluster stage, not searched",
    )

    @field_validator("sparsity")
    @classmethod
    def _sparsity_fractions(cls, values: list[float]) -> list[float]:
        if any(not 0 <= value < 1 for value in values):
            raise ValueError(f"expected fractions of the weights in [0, 1), 0 for no pruning. Received: {values}")
        return values

    @field_validator("clusters")
    @classmethod
    def _cluster_counts(cls, values: list[int]) -> list[int]:
        if any(value != 0 and not 2 <= value <= 256 for value in values):
            raise ValueError(f"expected cluster counts from 2 to 256, or 0 for no clustering. Received: {values}")
        return values

    @field_validator("alpha", "channel_keep")
    @classmethod
    def _within_range(cls, values: list[float], info: ValidationInfo) -> list[float]:
        # alpha: MobileNet widths; channel_keep: fractions of the MACs
        highest = 1.4 if info.field_name == "alpha" else 1
        if any(not 0 < value <= highest for value in values):
            raise ValueError(f"expected values in (0, {highest}]. Received: {values}")
        return values

    @field_validator("input_size")
    @classmethod
    def _divisible_sizes(cls, sizes: list[tuple[int, int]]) -> list[tuple[int, int]]:
        return [checked_input_size(size) for size in sizes]


class SearchConfig(Section):
    """How `edgeseg search` explores: Optuna samples candidates from `space`; candidates outside the
    budget are measured untrained and never trained; the rest get a short proxy training, stopped
    early when hopeless; the best `finalists` within the budget get the recipe's full schedule."""

    trials: int = Field(
        20,
        ge=1,
        description="distinct candidates measured (trained only when within budget), or every point of a smaller space; "
        "a candidate sampled again takes its earlier outcome and does not count",
    )
    proxy_epochs: int = Field(6, ge=1, description="epochs of the proxy training of a candidate")
    finalists: int = Field(2, ge=1, description="candidates within budget trained with the recipe's full schedule")
    storage: str | None = Field(
        None,
        description="an Optuna storage URL shared by several workers; default: an SQLite "
        "file in the search folder, so a killed search resumes",
    )
    space: SearchSpace = Field(default_factory=SearchSpace)

    @model_validator(mode="after")
    def _enough_trials(self) -> SearchConfig:
        if self.finalists > self.trials:
            raise ValueError(f"finalists ({self.finalists}) cannot exceed trials ({self.trials})")
        return self


def default_storage(runs_dir: Path, name: str) -> str:
    """The SQLite study of a search run in `runs_dir`."""
    return f"sqlite:///{(Path(runs_dir) / f'{name}-search' / 'study.db').resolve()}"
