"""The one training loop every training stage uses: optimizer, schedule, validation mIoU, best weights.

Every epoch ends with a checkpoint in `<stage_dir>/checkpoint/` (weights, optimizer, validation
history, best weights), so a stage killed at epoch k resumes at epoch k+1 with `--resume` and ends
with the same weights as an uninterrupted run. The checkpoint is removed once the stage is done.

Example::

    history = fit_segmentation(model, model, cfg=TrainConfig(epochs=3), ctx=ctx)
"""

import contextlib
import contextvars
import json
import logging
import shutil
import sys
from pathlib import Path

import numpy as np

from edgeseg._keras import keras, tf
from edgeseg.data.pipeline import steps_per_epoch, training_batches
from edgeseg.errors import EdgesegError
from edgeseg.files import atomic_path, write_json_atomic
from edgeseg.losses import MaskedCrossEntropy, median_frequency_weights
from edgeseg.scoring import score_split
from edgeseg.segmenter import KerasSegmenter

log = logging.getLogger("edgeseg")


class EpochCheckpoint(keras.callbacks.Callback):
    """Saves what resuming after an epoch needs; restores it when its key matches the stage's.

    Each epoch writes the TensorFlow checkpoint and, when the epoch is the best so far, its weights
    (`best_weights-<epoch>.npz`) first, and `progress.json`, naming both, last: a kill at any point
    leaves a complete earlier set (two TensorFlow checkpoints are kept; older weight files are
    removed only once the new progress is written).

    Example::

        checkpoint = EpochCheckpoint(stage_dir / "checkpoint", ctx.stage_key, model, optimizer, validation)
        epochs_done = checkpoint.restore()   # 0 when there is nothing of this stage to resume
    """

    def __init__(self, folder, key: str, scored_model, optimizer, validation):
        super().__init__()
        self.folder, self.key, self.validation = folder, key, validation
        self.checkpoint = tf.train.Checkpoint(model=scored_model, optimizer=optimizer)
        self.manager = tf.train.CheckpointManager(self.checkpoint, str(folder), max_to_keep=2)

    @property
    def progress_path(self):
        return self.folder / "progress.json"

    def restore(self) -> int:
        """Restores the last completed epoch of this stage, if any; returns how many epochs it had done.

        A checkpoint of another key, or one whose progress or weight files are unreadable, is
        discarded and the stage starts over; one TensorFlow cannot read is an error naming it,
        since a failed read may have changed some weights already.
        """
        if not self.progress_path.is_file():
            return 0
        try:
            progress = json.loads(self.progress_path.read_text())
            if progress.get("key") != self.key:
                raise ValueError("made under another recipe")
            best_weights = None
            if self.validation.keep_best and progress["best_epoch"]:
                with np.load(self.folder / progress["best_weights"]) as saved:
                    best_weights = [saved[f"w{i}"] for i in range(len(saved.files))]
            prefix = str(self.folder / progress["checkpoint"])
            if not Path(prefix + ".index").is_file():
                raise FileNotFoundError(prefix + ".index")
        except (OSError, ValueError, KeyError, TypeError) as error:
            log.info("  discarding the checkpoint in %s (%s); the stage starts over", self.folder, error)
            shutil.rmtree(self.folder, ignore_errors=True)
            return 0
        try:
            self.checkpoint.read(prefix).assert_existing_objects_matched()
        except (tf.errors.OpError, AssertionError, ValueError) as error:
            raise EdgesegError(
                f"{prefix}: unreadable training checkpoint ({str(error).splitlines()[0][:160]}); "
                f"delete {self.folder} to start the stage over"
            ) from None
        validation = self.validation
        validation.history, validation.best_weights = progress["history"], best_weights
        validation.best_miou, validation.best_epoch = progress["best_miou"], progress["best_epoch"]
        return progress["epochs_done"]

    def on_epoch_end(self, epoch, logs=None):
        validation = self.validation
        best_weights_file = f"best_weights-{validation.best_epoch}.npz" if validation.keep_best else None
        if validation.keep_best and validation.best_epoch == epoch + 1:
            with atomic_path(self.folder / best_weights_file) as temporary, open(temporary, "wb") as file:
                np.savez(file, **{f"w{i}": w for i, w in enumerate(validation.best_weights)})
        saved = self.manager.save(checkpoint_number=epoch + 1)
        write_json_atomic(
            self.progress_path,
            {
                "key": self.key,
                "epochs_done": epoch + 1,
                "checkpoint": Path(saved).name,
                "best_weights": best_weights_file,
                "history": validation.history,
                "best_miou": validation.best_miou,
                "best_epoch": validation.best_epoch,
            },
        )
        for stale in self.folder.glob("best_weights-*.npz"):
            if stale.name != best_weights_file:
                stale.unlink()


_EPOCH_LISTENERS: contextvars.ContextVar[tuple] = contextvars.ContextVar("epoch_listeners", default=())


@contextlib.contextmanager
def epoch_listener(listener):
    """Calls `listener(stage_folder_name, epoch, val_miou)` after every validated epoch of every
    training stage run inside the block; an exception it raises ends the training (the budget
    search stops hopeless candidates so).

    Example::

        with epoch_listener(lambda stage, epoch, miou: print(stage, epoch, miou)):
            run(recipe)
    """
    token = _EPOCH_LISTENERS.set((*_EPOCH_LISTENERS.get(), listener))
    try:
        yield
    finally:
        _EPOCH_LISTENERS.reset(token)


class ValidationMiou(keras.callbacks.Callback):
    """Scores `scored_model` on the val split after each epoch with the same code as `verify`."""

    def __init__(self, scored_model, ctx, keep_best: bool, patience: int | None = None):
        super().__init__()
        self.scored_model, self.ctx, self.keep_best, self.patience = scored_model, ctx, keep_best, patience
        self.segmenter = KerasSegmenter(scored_model)  # traced once, not every epoch
        self.best_miou, self.best_epoch, self.best_weights = -1.0, 0, None
        self.history: list[dict] = []

    def on_epoch_end(self, epoch, logs=None):
        scores = score_split(self.segmenter, self.ctx.val, self.ctx.num_classes, desc="val mIoU")
        miou = scores["miou"] or 0.0
        if logs is not None:
            logs["val_miou"] = miou  # for the TensorBoard callback, which runs after this one
        self.history.append({"epoch": epoch + 1, "loss": float((logs or {}).get("loss", float("nan"))), "val_miou": miou})
        if miou > self.best_miou:
            self.best_miou, self.best_epoch = miou, epoch + 1
            if self.keep_best:
                self.best_weights = self.scored_model.get_weights()
        log.info(
            "  epoch %d: loss %.4f, val mIoU %.4f (best %.4f at epoch %d%s)",
            epoch + 1,
            self.history[-1]["loss"],
            miou,
            self.best_miou,
            self.best_epoch,
            "" if self.keep_best else "; this stage keeps its last epoch",
        )
        if self.patience is not None and epoch + 1 - self.best_epoch >= self.patience:
            log.info("  early stopping: no better val mIoU for %d epochs", self.patience)
            self.model.stop_training = True
        for listener in _EPOCH_LISTENERS.get():
            listener(self.ctx.stage_dir.name, epoch + 1, miou)

    def on_train_end(self, logs=None):
        if self.keep_best and self.best_weights is not None:
            self.scored_model.set_weights(self.best_weights)


def fit_segmentation(trainer, scored_model, cfg, ctx, keep_best: bool = True, callbacks=(), extras=None) -> dict:
    """Trains `trainer` on ctx.train for cfg.epochs, scoring `scored_model` on ctx.val each epoch.

    `trainer` is the model being fit (the model itself, a TF-MOT-wrapped copy, or a distiller whose
    train_step has its own loss and reads the per-image `extras`); `scored_model` is what ships.
    With `keep_best`, it ends with its best epoch's weights. The loss is cross-entropy over pixels
    not labeled `ignore_index`, plus cfg.lovasz_weight times Lovasz-softmax (`label_loss`).
    """
    keras.utils.set_random_seed(ctx.seed)
    steps = steps_per_epoch(ctx.train, ctx.batch_size)
    class_weights = _class_weights(getattr(cfg, "class_weights", None), ctx)
    loss = MaskedCrossEntropy(ctx.ignore_index, class_weights, getattr(cfg, "ohem", None), cfg.lovasz_weight)
    trainer.compile(optimizer=_optimizer(cfg, steps), loss=loss)
    # Built here, not in the first step: a step that creates variables is traced twice by
    # tf.function (creating them, then not), which cost 12 of a tiny pruning stage's 58 seconds.
    trainer.optimizer.build(_trained_variables(trainer))
    validation = ValidationMiou(scored_model, ctx, keep_best, getattr(cfg, "early_stopping", None))
    # Only a stage of a run has a key; a bare call (a notebook, a test) leaves no checkpoint behind.
    checkpoints = (
        [EpochCheckpoint(ctx.stage_dir / "checkpoint", ctx.stage_key, scored_model, trainer.optimizer, validation)]
        if ctx.stage_key
        else []
    )
    epochs_done = checkpoints[0].restore() if checkpoints else 0
    if epochs_done:
        log.info("  resuming at epoch %d of %d from %s", epochs_done + 1, cfg.epochs, checkpoints[0].folder)
    logging_callbacks = (
        [keras.callbacks.TensorBoard(str(ctx.stage_dir / "logs"), write_graph=False, profile_batch=0)] if cfg.tensorboard else []
    )
    batches = training_batches(ctx.train, ctx.batch_size, ctx.augment, ctx.seed, skip_batches=epochs_done * steps, extras=extras)
    trainer.fit(
        batches,
        epochs=cfg.epochs,
        initial_epoch=epochs_done,
        steps_per_epoch=steps,
        callbacks=[*callbacks, validation, *logging_callbacks, *checkpoints],
        verbose=1 if sys.stderr.isatty() else 0,
    )
    for checkpoint in checkpoints:
        shutil.rmtree(checkpoint.folder, ignore_errors=True)
    return {
        "epochs": validation.history,
        "best_val_miou": validation.best_miou,
        "best_epoch": validation.best_epoch,
        "val_miou": validation.best_miou if keep_best else validation.history[-1]["val_miou"],
        **({"class_weights": class_weights} if class_weights is not None else {}),
    }


def _trained_variables(trainer) -> list:
    """What the optimizer updates: a trainer that holds more than it trains names it (a distiller:
    its student and feature adapter, not its teacher)."""
    return trainer.trained_variables() if hasattr(trainer, "trained_variables") else trainer.trainable_variables


def _class_weights(setting, ctx) -> list[float] | None:
    if setting == "median_frequency":
        return median_frequency_weights(ctx.train.labels, ctx.num_classes, ctx.ignore_index)
    return setting


class WarmUp(keras.optimizers.schedules.LearningRateSchedule):
    """A linear ramp from 0 to `peak` over `warmup_steps`, then `after` (counted from the ramp's end)."""

    def __init__(self, peak: float, warmup_steps: int, after):
        super().__init__()
        self.peak, self.warmup_steps, self.after = peak, warmup_steps, after

    def __call__(self, step):
        step = tf.cast(step, tf.float32)
        ramp = self.peak * step / max(1, self.warmup_steps)
        return tf.where(step < self.warmup_steps, ramp, self.after(step - self.warmup_steps))

    def get_config(self):
        return {"peak": self.peak, "warmup_steps": self.warmup_steps, "after": self.after}


def learning_rate_schedule(cfg, steps_per_epoch: int):
    """The stage's learning rate per optimizer step: warm-up, then cosine, poly or constant.

    Example::

        schedule = learning_rate_schedule(TrainConfig(epochs=10, warmup_epochs=1, schedule="poly"), 50)
        float(schedule(25))  # half-way through warm-up
    """
    warmup_steps = cfg.warmup_epochs * steps_per_epoch
    decay_steps = max(1, cfg.epochs * steps_per_epoch - warmup_steps)
    if cfg.schedule == "cosine":
        return keras.optimizers.schedules.CosineDecay(
            initial_learning_rate=0.0 if warmup_steps else cfg.lr,
            decay_steps=decay_steps,
            warmup_target=cfg.lr if warmup_steps else None,
            warmup_steps=warmup_steps,
        )
    if not warmup_steps:
        return (
            keras.optimizers.schedules.PolynomialDecay(cfg.lr, decay_steps, 0.0, power=0.9) if cfg.schedule == "poly" else cfg.lr
        )
    final = 0.0 if cfg.schedule == "poly" else cfg.lr
    return WarmUp(cfg.lr, warmup_steps, keras.optimizers.schedules.PolynomialDecay(cfg.lr, decay_steps, final, power=0.9))


def _optimizer(cfg, steps_per_epoch: int):
    learning_rate = learning_rate_schedule(cfg, steps_per_epoch)
    if cfg.optimizer == "sgd":
        return keras.optimizers.SGD(learning_rate, momentum=0.9)
    return keras.optimizers.Adam(learning_rate)
