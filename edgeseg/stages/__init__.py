"""The stages a recipe can list, by their YAML name. Each is `apply(state, cfg, ctx) -> StageOutcome`."""

from edgeseg.stages import cluster, distill, export, prune, quantize, train, verify

STAGES = {
    "train": train.apply,
    "distill": distill.apply,
    "prune": prune.apply,
    "cluster": cluster.apply,
    "quantize": quantize.apply,
    "verify": verify.apply,
    "export": export.apply,
}
