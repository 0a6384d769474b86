"""The one training loop every training stage uses: optimizer, schedule, validation mIoU, best weights.

Example:
    >>> history = fit_segmentation(model, model, cfg=TrainConfig(epochs=3), ctx=ctx)
"""

import logging
import sys

from edgeseg._keras import keras
from edgeseg.data.pipeline import steps_per_epoch, training_batches
from edgeseg.scoring import KerasSegmenter, score_split
from edgeseg.losses import MaskedCrossEntropy

log = logging.getLogger("edgeseg")


class ValidationMiou(keras.callbacks.Callback):
    """Scores `scored_model` on the val split after each epoch with the same code as `verify`."""

    def __init__(self, scored_model, ctx, keep_best: bool):
        super().__init__()
        self.scored_model, self.ctx, self.keep_best = scored_model, ctx, keep_best
        self.best_miou, self.best_epoch, self.best_weights, self.history = -1.0, 0, None, []

    def on_epoch_end(self, epoch, logs=None):
        scores = score_split(KerasSegmenter(self.scored_model), self.ctx.val, self.ctx.num_classes, desc="val mIoU")
        miou = scores["miou"] or 0.0
        self.history.append({"epoch": epoch + 1, "loss": float((logs or {}).get("loss", float("nan"))), "val_miou": miou})
        if miou > self.best_miou:
            self.best_miou, self.best_epoch = miou, epoch + 1
            if self.keep_best:
                self.best_weights = self.scored_model.get_weights()
        log.info("  epoch %d: loss %.4f, val mIoU %.4f (best %.4f at epoch %d)", epoch + 1,
                 self.history[-1]["loss"], miou, self.best_miou, self.best_epoch)

    def on_train_end(self, logs=None):
        if self.keep_best and self.best_weights is not None:
            self.scored_model.set_weights(self.best_weights)


def fit_segmentation(trainer, scored_model, cfg, ctx, keep_best: bool = True, callbacks=()) -> dict:
    """Trains `trainer` on ctx.train for cfg.epochs, scoring `scored_model` on ctx.val each epoch.

    `trainer` is the model being fit (the model itself, a TF-MOT-wrapped copy, or a distiller whose
    train_step has its own loss); `scored_model` is what ships. With `keep_best`, it ends with its
    best epoch's weights. The loss is cross-entropy over pixels not labeled `ignore_index`.
    """
    keras.utils.set_random_seed(ctx.seed)
    steps = steps_per_epoch(ctx.train, ctx.batch_size)
    trainer.compile(optimizer=_optimizer(cfg, steps), loss=MaskedCrossEntropy(ctx.ignore_index))
    validation = ValidationMiou(scored_model, ctx, keep_best)
    batches = training_batches(ctx.train, ctx.batch_size, ctx.augment, ctx.seed)
    trainer.fit(
        batches, epochs=cfg.epochs, steps_per_epoch=steps, callbacks=[*callbacks, validation],
        verbose=1 if sys.stderr.isatty() else 0,
    )
    return {
        "epochs": validation.history,
        "best_val_miou": validation.best_miou,
        "best_epoch": validation.best_epoch,
        "val_miou": validation.best_miou if keep_best else validation.history[-1]["val_miou"],
    }


def _optimizer(cfg, steps_per_epoch: int):
    total_steps = cfg.epochs * steps_per_epoch
    warmup_steps = cfg.warmup_epochs * steps_per_epoch
    if cfg.schedule == "cosine":
        learning_rate = keras.optimizers.schedules.CosineDecay(
            initial_learning_rate=0.0 if warmup_steps else cfg.lr,
            decay_steps=max(1, total_steps - warmup_steps),
            warmup_target=cfg.lr if warmup_steps else None,
            warmup_steps=warmup_steps,
        )
    else:
        learning_rate = cfg.lr
    if cfg.optimizer == "sgd":
        return keras.optimizers.SGD(learning_rate, momentum=0.9)
    return keras.optimizers.Adam(learning_rate)
