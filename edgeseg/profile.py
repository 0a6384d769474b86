"""Where a model spends its compute: parameters and multiply-accumulates (MACs) per layer, the
costliest first, so the bottleneck to simplify is the first line.

MACs count the convolutions and dense layers (kernel height x width x input channels per group x
output channels x output positions); resizes, adds and activations are cheap beside them and
count 0. For a `.tflite`, the file's ops with their dtypes and the interpreter's measured latency:
the LiteRT Python interpreter has no per-op timer, so per-op cost comes from the Keras model.

Example::

    found = profile_model(build_model(ModelSpec(arch="lraspp"), (256, 256), 11))
    found["layers"][0]["layer"], found["macs"]
"""

from pathlib import Path

from edgeseg._keras import keras
from edgeseg.errors import ModelError


def layer_costs(model) -> list[dict]:
    """Each layer with weights or compute: name, type, output shape, params and MACs, costliest first."""
    rows = []
    for layer in model.layers:
        macs = _macs(layer)
        params = layer.count_params()
        if macs or params:
            rows.append(
                {
                    "layer": layer.name,
                    "type": type(layer).__name__,
                    "output": list(layer.output_shape[1:]),
                    "params": int(params),
                    "macs": int(macs),
                }
            )
    return sorted(rows, key=lambda row: (-row["macs"], -row["params"]))


def profile_model(model, top: int | None = None) -> dict:
    """Totals and the `top` costliest layers of a Keras model.

    Example::

        profile_model(model, top=5)["macs"]
    """
    rows = layer_costs(model)
    return {
        "model": model.name,
        "input": list(model.input_shape[1:]),
        "params": int(model.count_params()),
        "macs": sum(row["macs"] for row in rows),
        "layers": rows[:top] if top else rows,
    }


def profile_file(
    path: str | Path, top: int | None = 15, threads: tuple[int, ...] = (1, 2), trust_model_code: bool = False
) -> dict:
    """`profile_model` for a .keras / .h5 / SavedModel (Lambda layers only with `trust_model_code`);
    for a .tflite, its ops, size and latency."""
    path = Path(path)
    if path.suffix != ".tflite":
        from edgeseg.models.io import load_model

        return profile_model(load_model(path, trust_model_code=trust_model_code), top)
    from edgeseg.tflite import TFLiteSegmenter, latency_by_threads

    try:
        content = path.read_bytes()
    except OSError as error:
        raise ModelError(f"{path}: cannot read the model file: {error.strerror or error}") from None
    segmenter = TFLiteSegmenter(content, source=str(path))
    return {
        "model": str(path),
        "bytes": len(content),
        "input": [*segmenter.input_size, 3],
        "ops": segmenter.op_report()["ops"],
        "latency": latency_by_threads(content, list(threads), runs=30),
    }


def profile_lines(found: dict) -> list[str]:
    """The profile as a table for a terminal."""
    if "ops" in found:
        latency = ", ".join(f"{count} thread(s) {row['median_ms']:.2f} ms" for count, row in found["latency"].items())
        lines = [
            f"{found['model']}: {found['bytes']:,} bytes, input {found['input']}, median latency {latency}",
            f"{'op':<24}{'count':>6}  dtypes",
        ]
        return lines + [f"{op['op']:<24}{op['count']:>6}  {', '.join(op['dtypes'])}" for op in found["ops"]]
    lines = [
        f"{found['model']}: {found['params']:,} params, {found['macs'] / 1e6:,.1f} M MACs at input {found['input']}",
        f"{'layer':<36}{'type':<22}{'output':<18}{'params':>10}{'M MACs':>10}{'share':>8}",
    ]
    for row in found["layers"]:
        share = row["macs"] / found["macs"] if found["macs"] else 0.0
        lines.append(
            f"{row['layer'][:35]:<36}{row['type']:<22}{str(row['output']):<18}{row['params']:>10,}"
            f"{row['macs'] / 1e6:>10.2f}{share:>8.1%}"
        )
    return lines


def _macs(layer) -> int:
    if isinstance(layer, keras.layers.DepthwiseConv2D):
        height, width, channels = layer.output_shape[1:]
        return height * width * channels * layer.kernel_size[0] * layer.kernel_size[1]
    if isinstance(layer, keras.layers.Conv2D):
        height, width, filters = layer.output_shape[1:]
        in_channels = layer.input_shape[-1] // layer.groups
        return height * width * filters * in_channels * layer.kernel_size[0] * layer.kernel_size[1]
    if isinstance(layer, keras.layers.Dense):
        positions = 1
        for size in layer.output_shape[1:-1]:
            positions *= size
        return positions * layer.input_shape[-1] * layer.units
    return 0
