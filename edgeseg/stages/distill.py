"""`distill`: train the recipe's student on labels and on the current model's softened logits.

Options beyond the logit loss (see `edgeseg.distillation`): feature distillation
(`feature_weight`), the student's backbone features mapped by a trained 1x1 adapter onto the
teacher's at the same stride; `data.unlabeled` images, learned from the teacher alone; and, with
augmentation off, the teacher's logits computed once before training instead of every step.
"""

import dataclasses

from edgeseg.distillation import Distiller, feature_layer_pair, frozen_teacher, teacher_logits_once, with_unlabeled
from edgeseg.errors import StageError
from edgeseg.models.zoo import model_from_spec
from edgeseg.stages.base import PipelineState, StageOutcome, save_stage_model
from edgeseg.training import fit_segmentation


def apply(state: PipelineState, cfg, ctx) -> StageOutcome:
    """Builds the student, distills it from `state.model`; the student becomes the current model."""
    data = ctx.recipe.data
    student = model_from_spec(ctx.recipe.student, tuple(data.input_size), ctx.num_classes, ctx.seed)
    teacher = state.model
    if teacher.output_shape[-1] != student.output_shape[-1]:
        raise StageError(
            f"distill: the teacher predicts {teacher.output_shape[-1]} classes and the student "
            f"{student.output_shape[-1]}; they must agree. Received: teacher output {teacher.output_shape}"
        )
    frozen = frozen_teacher(teacher)
    feature_layers = feature_layer_pair(frozen, student, cfg)
    distiller = Distiller(student, frozen, cfg, ctx.ignore_index, feature_layers, cfg.lovasz_weight)
    train, extras = with_unlabeled(ctx.train, ctx.unlabeled)
    cached = ctx.augment is None and feature_layers is None
    if cached:
        extras["teacher_logits"] = teacher_logits_once(distiller, train.images)
    fit = fit_segmentation(distiller, student, cfg, dataclasses.replace(ctx, train=train), extras=extras or None)
    record = {
        **fit,
        **save_stage_model(student, ctx),
        "student": student.name,
        "teacher": teacher.name,
        "kd_loss": cfg.kd_loss,
        "teacher_logits": "cached" if cached else "every step",
        "unlabeled_images": 0 if ctx.unlabeled is None else len(ctx.unlabeled),
        **({"feature_layers": list(feature_layers)} if feature_layers else {}),
    }
    return StageOutcome(PipelineState(model=student, teacher=teacher), record)
