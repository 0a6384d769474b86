"""The whole recipe: its sections, the rules that span them (stage order, who needs what), and the
values a stage inherits from other sections, resolved once when the recipe loads."""

from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING, Annotated, Any, Union

from pydantic import BaseModel, ConfigDict, Discriminator, Field, PrivateAttr, Tag, create_model, field_validator, model_validator

from edgeseg.models.kinds import is_teach_only
from edgeseg.recipe.base import Section
from edgeseg.recipe.data import DataConfig
from edgeseg.recipe.models import ModelSpec
from edgeseg.recipe.search import BudgetConfig, SearchConfig
from edgeseg.recipe.stages import (
    MODEL_CHANGING_STAGES,
    STAGE_CONFIGS,
    TFLITE_READING_STAGES,
    DistributeConfig,
    ExportConfig,
    QuantizeConfig,
    QuantizeSettings,
    VerifyConfig,
    VerifySettings,
)


def _stage_entry(name: str, config_class: type[Section]) -> type[BaseModel]:
    def empty_means_defaults(cls, value):
        return {} if value is None else value

    return create_model(  # type: ignore[call-overload]
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


if TYPE_CHECKING:  # a union built at run time from STAGE_CONFIGS, which a type checker cannot follow
    StageEntry = BaseModel
else:
    StageEntry = Annotated[
        Union[tuple(Annotated[_stage_entry(n, c), Tag(n)] for n, c in STAGE_CONFIGS.items())],  # noqa: UP007 (built from a tuple)
        Discriminator(_stage_tag, custom_error_type="unknown_stage", custom_error_message="unknown stage"),
    ]


class Recipe(Section):
    """A validated recipe. Build one with `load_recipe(path)`."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", description="run name: runs/<name>/")
    seed: int = Field(0, ge=0, le=2**31 - 1)
    data: DataConfig
    teacher: ModelSpec
    student: ModelSpec | None = None
    distribute: DistributeConfig | None = Field(
        None, description="train, distill, prune_channels, prune and cluster on several devices"
    )
    budget: BudgetConfig | None = Field(None, description="what the model must meet on the device, for `edgeseg search`")
    search: SearchConfig | None = Field(None, description="the space `edgeseg search` explores within the budget")
    stages: list[StageEntry] = Field(min_length=1)
    _settings: list[tuple[str, Section]] = PrivateAttr(default_factory=list)

    def stage_sections(self) -> list[tuple[str, Section]]:
        """The stages in recipe order as (name, section) pairs, as written."""
        sections = []
        for entry in self.stages:
            name = next(iter(type(entry).model_fields))
            sections.append((name, getattr(entry, name)))
        return sections

    def stage_items(self) -> list[tuple[str, Section]]:
        """The stages in recipe order as (name, settings) pairs: each section with the values it
        inherits from other sections (`QuantizeSettings`, `VerifySettings`), resolved at load time."""
        return list(self._settings)

    @property
    def hash(self) -> str:
        canonical = json.dumps(self.model_dump(mode="json"), sort_keys=True)
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]

    @model_validator(mode="after")
    def _stage_order(self) -> Recipe:
        names = [name for name, _ in self.stage_sections()]
        for index, name in enumerate(names):
            if name in names[:index]:
                raise ValueError(f"stages[{index}]: '{name}' appears twice; each stage runs once")
        if "quantize" in names:
            quantize_at = names.index("quantize")
            for index, name in enumerate(names[quantize_at + 1 :], start=quantize_at + 1):
                if name in MODEL_CHANGING_STAGES:
                    raise ValueError(
                        f"stages[{index}]: '{name}' changes the model, so it must come before 'quantize' (stages[{quantize_at}])"
                    )
        if "verify" in names and "export" in names and names.index("export") < names.index("verify"):
            raise ValueError("stages: 'export' must come after 'verify', so a model that fails a gate is never exported")
        for index, name in enumerate(names):
            if name in TFLITE_READING_STAGES and "quantize" not in names[:index]:
                raise ValueError(f"stages[{index}]: '{name}' reads the .tflite, so a 'quantize' stage must come first")
        for index, (name, cfg) in enumerate(self.stage_sections()):
            weights = getattr(cfg, "class_weights", None)
            if isinstance(weights, list) and len(weights) != len(self.data.classes):
                raise ValueError(
                    f"stages[{index}].{name}.class_weights: expected one weight per class "
                    f"({len(self.data.classes)}). Received: {len(weights)} weights"
                )
        stage_configs = dict(self.stage_sections())
        quantize = stage_configs.get("quantize")
        if (
            isinstance(quantize, QuantizeConfig)
            and quantize.mode == "auto"
            and quantize.max_miou_drop is None
            and getattr(stage_configs.get("verify"), "max_miou_drop", None) is None
        ):
            raise ValueError(
                f"stages[{names.index('quantize')}].quantize: mode auto needs a budget: set "
                "quantize.max_miou_drop or verify.max_miou_drop"
            )
        for index, (name, cfg) in enumerate(self.stage_sections()):
            # prune_channels learns from the model it started from when no distill stage came before.
            if getattr(cfg, "distill", None) is not None and "distill" not in names[:index] and name != "prune_channels":
                raise ValueError(
                    f"stages[{index}].{name}.distill: the fine-tune learns from the teacher a 'distill' "
                    f"stage distilled from, so one must come before '{name}'. Received: stages={names}"
                )
        if self.data.unlabeled is not None and "distill" not in names:
            raise ValueError(
                "data.unlabeled: unlabeled images are learned from a teacher, so they need a 'distill' stage. "
                f"Received: unlabeled={str(self.data.unlabeled)!r}"
            )
        if "distill" in names and self.student is None:
            raise ValueError("stages has 'distill' but no 'student' is defined: add a student section")
        if "distill" not in names and self.student is not None:
            raise ValueError("a 'student' is defined but no 'distill' stage uses it: add one or remove the student")
        model_changing = [name for name in names if name in MODEL_CHANGING_STAGES]
        trains_teacher_first = bool(model_changing) and model_changing[0] == "train"
        if self.teacher.path is not None and is_teach_only(self.teacher.path) and model_changing[:1] != ["distill"]:
            raise ValueError(
                f"teacher.path is a .tflite or a SavedModel not saved by tf_keras, which can only teach: "
                f"'distill' must be the first stage that changes the model. Received: stages {names}"
            )
        if self.student is not None and self.student.path is not None and is_teach_only(self.student.path):
            raise ValueError(
                "student.path can only teach (a .tflite or a SavedModel not saved by tf_keras); a student "
                f"must be trainable: give a .keras, .h5 or tf_keras SavedModel. Received: student.path={self.student.path}"
            )
        for role, spec in (("teacher", self.teacher), ("student", self.student)):
            stride = spec.output_stride if spec is not None and spec.arch is not None else 1
            if any(side % stride for side in self.data.input_size):
                raise ValueError(
                    f"{role}.output_stride {stride} needs data.input_size sides that are multiples of {stride}. "
                    f"Received: input_size={list(self.data.input_size)}"
                )
        m_by_n = getattr(stage_configs.get("prune"), "m_by_n", None)
        if self.search is not None and self.search.space.sparsity and m_by_n:
            raise ValueError(
                "search.space.sparsity replaces the prune stage's target_sparsity, which its m_by_n fixes at m/n: "
                f"search one or the other. Received: m_by_n={list(m_by_n)}, sparsity={self.search.space.sparsity}"
            )
        prunes_teacher = "prune_channels" in names and "distill" in names[names.index("prune_channels") :]
        if self.search is not None and min(self.search.space.channel_keep) < 1 and prunes_teacher:
            raise ValueError(
                "search.space.channel_keep below 1 adds a prune_channels stage after distill, and the recipe's own "
                "prunes the teacher before it (a recipe runs each stage once): move it after distill or search "
                f"channel_keep [1.0]. Received: channel_keep={self.search.space.channel_keep}"
            )
        if self.teacher.path is None and self.teacher.weights is None and not trains_teacher_first:
            raise ValueError(
                "the teacher has no weights: add a 'train' stage before the others, or set teacher.path / teacher.weights"
            )
        self._settings = _resolved_settings(self.stage_sections())
        return self


def _resolved_settings(sections: list[tuple[str, Section]]) -> list[tuple[str, Section]]:
    """Each stage's section with what it inherits from the others. Only what a stage reads is
    filled in (a plain int8 `quantize` reads no verify value), so a stage's settings, and the
    resume key hashed from them, change exactly when something it reads does."""
    by_name = dict(sections)
    export, verify, quantize = by_name.get("export"), by_name.get("verify"), by_name.get("quantize")
    output = export.output if isinstance(export, ExportConfig) else "logits"
    resolved = []
    for name, section in sections:
        if isinstance(section, QuantizeConfig):
            inherited: dict[str, Any] = {"output": output}
            if section.mode == "auto":
                inherited["max_miou_drop"] = section.max_miou_drop
                if isinstance(verify, VerifyConfig):
                    inherited["threads"] = verify.threads
                    if section.max_miou_drop is None:
                        inherited["max_miou_drop"] = verify.max_miou_drop
            section = QuantizeSettings.model_validate({**section.model_dump(), **inherited})
        elif isinstance(section, VerifyConfig) and isinstance(quantize, QuantizeConfig):
            section = VerifySettings.model_validate(
                {**section.model_dump(), "output": output, "calibration_images": quantize.calibration_images}
            )
        resolved.append((name, section))
    return resolved
