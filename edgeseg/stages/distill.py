"""`distill`: train the recipe's student on labels and on the current model's softened logits."""

from edgeseg._keras import keras, tf
from edgeseg.errors import StageError
from edgeseg.losses import distillation_loss
from edgeseg.models.zoo import model_from_spec
from edgeseg.stages.base import PipelineState, StageOutcome, save_stage_model
from edgeseg.training import fit_segmentation


class Distiller(keras.Model):
    """Trains `student` against a frozen `teacher` run in inference mode on the same augmented batch."""

    def __init__(self, student, teacher, cfg, ignore_index: int):
        super().__init__()
        self.student, self.teacher, self.cfg, self.ignore_index = student, teacher, cfg, ignore_index

    def call(self, images, training=False):
        return self.student(images, training=training)

    def teacher_logits(self, images):
        """The teacher's logits for the student's batch, at the student's output size.

        A teacher made for another input size sees the batch resized to its size (bilinear, as the
        demos feed a camera frame), and its logits are resized back.
        """
        teacher_size = self.teacher.input_shape[1:3]
        if None not in teacher_size and tuple(teacher_size) != tuple(images.shape[1:3]):
            images = tf.image.resize(images, teacher_size, method="bilinear")
        logits = self.teacher(images, training=False)
        student_size = self.student.output_shape[1:3]
        if tuple(logits.shape[1:3]) != tuple(student_size):
            logits = tf.image.resize(logits, student_size, method="bilinear")
        return logits

    def train_step(self, data):
        images, labels = data
        teacher_logits = self.teacher_logits(images)
        with tf.GradientTape() as tape:
            student_logits = self.student(images, training=True)
            loss = distillation_loss(
                labels, student_logits, teacher_logits, self.ignore_index, self.cfg.temperature, self.cfg.kd_weight,
                self.cfg.kd_loss,
            )
        variables = self.student.trainable_variables
        self.optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
        return {"loss": loss}


def apply(state: PipelineState, cfg, ctx) -> StageOutcome:
    """Builds the student, distills it from `state.model`; the student becomes the current model."""
    data = ctx.recipe.data
    student = model_from_spec(ctx.recipe.student, tuple(data.input_size), ctx.num_classes, ctx.seed)
    teacher = state.model
    if teacher.output_shape[-1] != student.output_shape[-1]:
        raise StageError(f"distill: the teacher predicts {teacher.output_shape[-1]} classes and the student "
                         f"{student.output_shape[-1]}; they must agree. Received: teacher output {teacher.output_shape}")
    fit = fit_segmentation(Distiller(student, teacher, cfg, ctx.ignore_index), student, cfg, ctx)
    record = {**fit, **save_stage_model(student, ctx), "student": student.name, "teacher": teacher.name,
              "kd_loss": cfg.kd_loss}
    return StageOutcome(PipelineState(model=student, teacher=teacher), record)
