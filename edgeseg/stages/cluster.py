"""`cluster`: weight clustering with TF-MOT, keeping pruned zeros when asked, measured after stripping."""

import logging

from edgeseg._keras import keras, tfmot
from edgeseg.distillation import fine_tune_loss, fine_tune_trainer
from edgeseg.errors import StageError
from edgeseg.kernels import kernels_of, sparsity, unique_values
from edgeseg.layer_selection import select_layers
from edgeseg.models.copying import copy_model
from edgeseg.stages.base import PipelineState, StageOutcome, save_stage_model
from edgeseg.training import fit_segmentation

log = logging.getLogger("edgeseg")

CENTROID_INITS = {
    "kmeans++": "KMEANS_PLUS_PLUS",
    "linear": "LINEAR",
    "density": "DENSITY_BASED",
    "random": "RANDOM",
}


def apply(state: PipelineState, cfg, ctx) -> StageOutcome:
    """Clusters each selected kernel of a copy of `state.model` to `cfg.clusters` values, fine-tunes, strips.

    With `per_channel`, each output channel of a Conv2D with a bias gets clusters of its own. The
    others are clustered per kernel, which also bounds every channel: TF-MOT supports per-channel
    clustering for Conv2D only, and 0.8.1 counts a bias-less layer's channels from its kernel
    (taking it for the bias), finds "not enough weights" and leaves the layer unclustered; every
    convolution followed by BatchNorm, as in the zoo, is bias-less.
    """
    names = select_layers(state.model, ctx.num_classes, cfg, stage="cluster")
    if not names:
        raise StageError(f"cluster: no layer selected by stages.cluster.layers={cfg.layers}, skip_layers={cfg.skip_layers}")
    init = getattr(tfmot.clustering.keras.CentroidInitialization, CENTROID_INITS[cfg.init])
    per_channel = {
        layer.name
        for layer in state.model.layers
        if cfg.per_channel and layer.name in names and type(layer) is keras.layers.Conv2D and layer.use_bias
    }
    if cfg.per_channel and len(per_channel) < len(names):
        log.info(
            "  cluster: per channel in %d layers; %d layers without a bias or not Conv2D are clustered per kernel",
            len(per_channel),
            len(names) - len(per_channel),
        )

    def wrap(layer):
        if layer.name not in names:
            return layer
        return tfmot.clustering.keras.cluster_weights(
            layer,
            number_of_clusters=cfg.clusters,
            cluster_centroids_init=init,
            preserve_sparsity=cfg.preserve_sparsity,
            cluster_per_channel=layer.name in per_channel,
        )

    wrapped = copy_model(state.model, wrap)
    fit = fit_segmentation(
        fine_tune_trainer(wrapped, state.teacher, cfg.distill, ctx.ignore_index, "cluster", cfg.lovasz_weight),
        wrapped,
        cfg,
        ctx,
        keep_best=False,
    )
    # TF-MOT's strip reuses the wrapped model's layers, which then belong to two graphs and give
    # `layer.output` of the wrong one; a copy's layers belong to the returned model alone.
    model = copy_model(tfmot.clustering.keras.strip_clustering(wrapped))
    kernels = kernels_of(model, names)
    uniques = unique_values(kernels, per_channel=cfg.per_channel)
    record = {
        **fit,
        **save_stage_model(model, ctx),
        "clusters": cfg.clusters,
        "init": cfg.init,
        "per_channel": cfg.per_channel,
        "layers": len(names),
        "per_channel_layers": len(per_channel),
        "max_unique_values": max(uniques.values(), default=0),
        "sparsity": sparsity(kernels),
        "fine_tune_loss": fine_tune_loss(cfg.distill, lovasz_weight=cfg.lovasz_weight),
    }
    over = {name: count for name, count in uniques.items() if count > cfg.clusters}
    if over:
        name, count = next(iter(over.items()))
        where = "an output channel of " if cfg.per_channel else ""
        raise StageError(f"cluster: {len(over)} kernels have more than {cfg.clusters} values (e.g. {where}{name}: {count})")
    return StageOutcome(PipelineState(model=model, teacher=state.teacher), record)
