"""`cluster`: weight clustering with TF-MOT, keeping pruned zeros when asked, measured after stripping."""

from edgeseg._keras import tfmot
from edgeseg.errors import StageError
from edgeseg.models.copying import copy_model
from edgeseg.stages.base import PipelineState, StageOutcome, save_stage_model
from edgeseg.stages.compressible import (
    compressible_kernels,
    first_conv_name,
    is_compressible,
    sparsity,
    unique_values,
)
from edgeseg.training import fit_segmentation


def apply(state: PipelineState, cfg, ctx) -> StageOutcome:
    """Clusters each selected kernel of a copy of `state.model` to `cfg.clusters` values, fine-tunes, strips."""
    stem = first_conv_name(state.model)
    init = tfmot.clustering.keras.CentroidInitialization.KMEANS_PLUS_PLUS

    def wrap(layer):
        if is_compressible(layer, stem, ctx.num_classes):
            return tfmot.clustering.keras.cluster_weights(
                layer, number_of_clusters=cfg.clusters, cluster_centroids_init=init, preserve_sparsity=cfg.preserve_sparsity
            )
        return layer

    wrapped = copy_model(state.model, wrap)
    fit = fit_segmentation(wrapped, wrapped, cfg, ctx, keep_best=False)
    model = tfmot.clustering.keras.strip_clustering(wrapped)
    kernels = compressible_kernels(model, ctx.num_classes)
    uniques = unique_values(kernels)
    record = {
        **fit, **save_stage_model(model, ctx), "clusters": cfg.clusters,
        "max_unique_values": max(uniques.values(), default=0), "sparsity": sparsity(kernels),
    }
    over = {name: count for name, count in uniques.items() if count > cfg.clusters}
    if over:
        name, count = next(iter(over.items()))
        raise StageError(f"cluster: {len(over)} kernels have more than {cfg.clusters} values (e.g. {name}: {count})")
    return StageOutcome(PipelineState(model=model, teacher=state.teacher), record)
