"""Quantization-aware training (QAT) with TF-MOT for every zoo model, keeping what prune and cluster made.

TF-MOT's registry has no QuantizeConfig for layers a segmentation graph needs: `Rescaling` (the
in-model normalization) and `Multiply` (LR-ASPP's gate, hard-swish, squeeze-excite) get their
output quantized like any activation; `UpSampling2D` and `Resizing` keep their input's quantization, because
TFLite's RESIZE_BILINEAR needs the same scale on both sides and a second fake-quant would train
against a rounding the integer kernel never does. Every other layer takes TF-MOT's own config.

The collaborative schemes keep earlier compression through QAT: `pqat` keeps pruned zeros,
`cqat` the clustered values, `pcqat` both (`collaborative_scheme` picks one from what a model holds).

Example::

    qat_model = quantize_aware(model, scheme="pcqat")
    qat_model.fit(...)   # then convert with the int8 converter as usual
"""

import logging

from edgeseg._keras import keras, tfmot
from edgeseg.errors import ModelError
from edgeseg.kernels import compression_of
from edgeseg.models.copying import copy_model

log = logging.getLogger("edgeseg")

_qkeras = tfmot.quantization.keras
PIXEL_RANGE = (0.0, 255.0)


class OutputQuantizeConfig(_qkeras.QuantizeConfig):  # type: ignore[name-defined]  # TF-MOT ships no types
    """Quantizes a weightless layer's output with a moving-average range, as TF-MOT does for activations."""

    def get_weights_and_quantizers(self, layer):
        return []

    def get_activations_and_quantizers(self, layer):
        return []

    def set_quantize_weights(self, layer, quantize_weights):
        pass

    def set_quantize_activations(self, layer, quantize_activations):
        pass

    def get_output_quantizers(self, layer):
        return [_qkeras.quantizers.MovingAverageQuantizer(num_bits=8, per_axis=False, symmetric=False, narrow_range=False)]

    def get_config(self):
        return {}


class InputRangeQuantizeConfig(OutputQuantizeConfig):
    """Leaves the output in its input's quantization: for ops whose integer kernel requires equal scales."""

    def get_output_quantizers(self, layer):
        return []


LAYER_CONFIGS: dict[type, type] = {
    keras.layers.Rescaling: OutputQuantizeConfig,
    keras.layers.Multiply: OutputQuantizeConfig,
    keras.layers.UpSampling2D: InputRangeQuantizeConfig,
    keras.layers.Resizing: InputRangeQuantizeConfig,
}


class _ClusterPreserveScheme(tfmot.experimental.combine.Default8BitClusterPreserveQuantizeScheme):
    """TF-MOT's CQAT/PCQAT scheme, with a weight quantizer of its own for every layer.

    TF-MOT 0.8.1 hands one quantizer object to every layer, and that object turns sparsity
    preservation off for good when it meets a layer without zeros (the first convolution, which
    prune skips): every later layer then loses its pruned zeros during PCQAT.
    """

    def get_quantize_registry(self):
        return _FreshQuantizerRegistry(super().get_quantize_registry(), self.preserve_sparsity)


class _FreshQuantizerRegistry:
    def __init__(self, registry, preserve_sparsity: bool):
        self._registry, self._preserve_sparsity = registry, preserve_sparsity

    def supports(self, layer):
        return self._registry.supports(layer)

    def get_quantize_config(self, layer):
        config = self._registry.get_quantize_config(layer)
        shared = getattr(config, "weight_quantizer", None)
        if shared is not None and hasattr(shared, "preserve_sparsity"):
            config.weight_quantizer = type(shared)(self._preserve_sparsity)
        return config


SCHEMES = {
    "default": lambda: _qkeras.default_8bit.Default8BitQuantizeScheme(),
    "pqat": lambda: tfmot.experimental.combine.Default8BitPrunePreserveQuantizeScheme(),
    "cqat": lambda: _ClusterPreserveScheme(preserve_sparsity=False),
    "pcqat": lambda: _ClusterPreserveScheme(preserve_sparsity=True),
}


def collaborative_scheme(pruned: bool, clustered: bool) -> str:
    """The scheme that keeps what earlier stages made: `pcqat`, `pqat`, `cqat` or `default`."""
    return {(True, True): "pcqat", (True, False): "pqat", (False, True): "cqat"}.get((pruned, clustered), "default")


def quantize_aware(model, scheme: str = "default", calibration=None):
    """A new model with fake-quantization on every weight and activation, ready to fine-tune; `model`
    is not changed. The input range is fixed to 0..255, so the converted file takes raw pixels.

    With `calibration` images, every activation range starts where post-training calibration would
    put it (the min and max of the float layer's output on them). TF-MOT starts them at -6..6 and
    moves them with a 0.999 moving average, so a fine-tune of a few hundred steps ends with ranges
    far from the data: wasted precision, and multiplies whose scales XNNPACK refuses to prepare.

    Example::

        qat_model = quantize_aware(build_model(ModelSpec(arch="lraspp"), (64, 64), 4), calibration=images)
    """
    if scheme not in SCHEMES:
        raise ValueError(f"scheme must be one of {sorted(SCHEMES)}. Received: scheme={scheme!r}")

    def annotate(layer):
        if isinstance(layer, keras.layers.InputLayer):
            return layer
        config = LAYER_CONFIGS.get(type(layer))
        return _qkeras.quantize_annotate_layer(layer, config() if config else None)

    try:
        with _qkeras.quantize_scope(_custom_objects()):
            qat_model = _qkeras.quantize_apply(copy_model(model, annotate), SCHEMES[scheme]())
    except (RuntimeError, ValueError) as error:
        raise ModelError(
            f"{model.name}: TF-MOT cannot make this model quantization-aware ({error}). Received: scheme={scheme!r}"
        ) from None
    _pin_input_range(qat_model)
    if calibration is not None:
        _start_ranges_from_calibration(qat_model, model, calibration)
    return qat_model


def fine_tune_quantization_aware(model, cfg, ctx, calibration):
    """`model` fine-tuned quantization-aware for `cfg` (a `qat:` section) on `ctx`'s data, with the
    scheme that keeps what its kernels hold (zeros from pruning, clusters), whether made by this
    recipe's stages or before, and activation ranges started on `calibration`; returns the QAT
    model and the figures for the record."""
    from edgeseg.training import fit_segmentation

    scheme = collaborative_scheme(*compression_of(model))
    log.info("  quantization-aware training (%s) for %d epochs", scheme, cfg.epochs)
    qat_model = quantize_aware(model, scheme, calibration=calibration)
    fit = fit_segmentation(qat_model, qat_model, cfg, ctx)
    return qat_model, {"qat": {"scheme": scheme, **fit}}


def _custom_objects() -> dict:
    return {config.__name__: config for config in set(LAYER_CONFIGS.values())}


def _pin_input_range(qat_model) -> None:
    """Sets the input fake-quant to exactly 0..255; its all-values range keeps it there on pixel data."""
    for layer in qat_model.layers:
        ranges = [weight for weight in layer.weights if weight.name.endswith(("_min:0", "_max:0"))]
        if ranges and isinstance(layer.inbound_nodes[0].inbound_layers, keras.layers.InputLayer):
            minimum, maximum = ranges
            minimum.assign(PIXEL_RANGE[0])
            maximum.assign(PIXEL_RANGE[1])


def _start_ranges_from_calibration(qat_model, model, images) -> None:
    ranges: dict[str, list] = {}  # float layer name -> the range variables of its output in the QAT model
    for wrapper in qat_model.layers:
        for weight in wrapper.weights:
            kind = weight.name.split("/")[-1].split(":")[0]
            if kind in ("output_min", "post_activation_min", "output_max", "post_activation_max"):
                ranges.setdefault(wrapper.name.removeprefix("quant_"), []).append(weight)
    names = [name for name in ranges if name in {layer.name for layer in model.layers}]
    probe = keras.Model(model.input, [model.get_layer(name).output for name in names])
    low = dict.fromkeys(names, 0.0)
    high = dict.fromkeys(names, 0.0)  # a range must hold 0
    for start in range(0, len(images), 16):
        outputs = probe(images[start : start + 16].astype("float32"), training=False)
        for name, output in zip(names, outputs if len(names) > 1 else [outputs]):
            values = output.numpy()
            low[name], high[name] = min(low[name], float(values.min())), max(high[name], float(values.max()))
    for name in names:
        for weight in ranges[name]:
            weight.assign(low[name] if weight.name.endswith("_min:0") else high[name])
