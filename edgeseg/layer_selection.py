"""Which layers pruning and clustering touch.

Defaults skip what hurts accuracy most for what little it saves: the first convolution (few
weights, sees raw pixels) and the logit layers. Depthwise kernels are never compressed: TF-MOT's
pruning and clustering registries list no weight of `DepthwiseConv2D`, so its wrapper would train
and change nothing. A recipe's `layers` / `skip_layers` patterns replace or trim that default.
"""

import logging
import re

from edgeseg._keras import keras
from edgeseg.kernels import layer_kernel

log = logging.getLogger("edgeseg")

# The layers whose kernels edgeseg prunes and clusters; TF-MOT 0.8's registries list no weight of
# DepthwiseConv2D, so its wrapper would train and change nothing.
WRAPPABLE_TYPES = ("Conv2D", "Dense")


def is_default_compressible(layer, first_conv_name: str | None, num_classes: int) -> bool:
    """A pointwise or full Conv2D that is neither the stem nor a logit layer."""
    return type(layer) is keras.layers.Conv2D and layer.name != first_conv_name and layer.filters != num_classes


def first_conv_name(model) -> str | None:
    return next((layer.name for layer in model.layers if isinstance(layer, keras.layers.Conv2D)), None)


def select_layers(model, num_classes: int, selection, m_by_n=None, stage: str = "compress") -> list[str]:
    """Names of the layers to wrap: the recipe's `layers` patterns (or the default), minus `skip_layers`.

    A selected layer TF-MOT cannot wrap the way asked is left out with a logged reason.
    """
    stem = first_conv_name(model)
    chosen = []
    for layer in model.layers:
        kind = type(layer).__name__
        if selection.layers is None:
            wanted = is_default_compressible(layer, stem, num_classes)
        else:
            wanted = _matches(selection.layers, layer.name, kind)
            if wanted and kind not in WRAPPABLE_TYPES:
                log.info(
                    "  %s: skipping %s (%s): edgeseg compresses %s kernels only (TF-MOT lists no weight of %s)",
                    stage,
                    layer.name,
                    kind,
                    " and ".join(WRAPPABLE_TYPES),
                    kind,
                )
                continue
        if not wanted or _matches(selection.skip_layers, layer.name, kind):
            continue
        reason = _m_by_n_obstacle(layer, m_by_n) if m_by_n else None
        if reason:
            log.info("  %s: skipping %s: %s", stage, layer.name, reason)
            continue
        chosen.append(layer.name)
    return chosen


def _matches(patterns, name: str, kind: str) -> bool:
    return any(re.search(pattern, name) or re.search(pattern, kind) for pattern in patterns)


def _m_by_n_obstacle(layer, m_by_n) -> str | None:
    n = m_by_n[1]
    kernel = layer_kernel(layer)
    if kernel is None:
        return "it has no kernel"
    inputs = kernel.shape[-2]
    if inputs % n:
        return f"its {inputs} input channels are not a multiple of n={n}"
    return None
