"""What models cost on the device, measured side by side: MACs and parameters, int8 file size raw and
gzip, and interpreter latency with the files timed alternately in one process.

Latency and size do not depend on the weights, so untrained models measure like trained ones
(the budget search relies on it); calibration images only set the int8 ranges.

Example::

    models = {"before": model, "after": pruned}
    costs = deployment_costs(models, int8_files(models, calibration))
    costs["after"]["latency_ms"]["2"] / costs["before"]["latency_ms"]["2"]
"""

import re
import shlex
import subprocess
import tempfile

import numpy as np

from edgeseg.errors import EdgesegError, RecipeError
from edgeseg.files import content_sizes
from edgeseg.markdown import table_head
from edgeseg.profile import profile_model
from edgeseg.quantization.converters import convert_int8
from edgeseg.tflite import alternating_latency


def unshared_constants(model, seed: int = 0) -> None:
    """Gives a freshly built model's weights small seeded noise, in place. An untrained model's
    zero biases and unit BatchNorm scales convert to identical constants, which the converter
    stores once, so its int8 file is smaller than the trained model's will be (436.6 against
    409.3 KiB for a 32 px minimal a0.35); with distinct values it measures like a trained one."""
    rng = np.random.default_rng(seed)
    model.set_weights([weights + rng.normal(0, 1e-3, weights.shape).astype(weights.dtype) for weights in model.get_weights()])


def untrained_model(
    spec,
    input_size: tuple[int, int],
    num_classes: int,
    seed: int = 0,
    macs_kept: float | None = None,
    keep_layers=(),
    **plan_settings,
):
    """A zoo model built from `spec` that measures as it will once trained (`unshared_constants`),
    with channels removed to `macs_kept` of its MACs when given: the layers `keep_layers` finds
    left whole, the rest planned by `kept_channels` with `plan_settings` (allocation, round_to,
    min_channels, cost_weighted; `prune_channels`' defaults when absent) on l1 importance,
    since untrained weights give no ranking a meaning; a trained model's importance gives other
    widths. ValueError when that fraction is out of reach."""
    from edgeseg.channel_pruning.allocation import kept_channels
    from edgeseg.channel_pruning.groups import find_groups, layers_matching
    from edgeseg.channel_pruning.importance import channel_importance
    from edgeseg.channel_pruning.removal import remove_channels
    from edgeseg.models.zoo import build_model

    model = build_model(spec, input_size, num_classes, seed=seed)
    unshared_constants(model, seed)
    if macs_kept is None:
        return model
    groups = find_groups(model, pinned_layers=layers_matching(model, keep_layers))
    importance = channel_importance(model, groups, "l1")
    return remove_channels(model, groups, kept_channels(model, groups, importance, ("macs", macs_kept), **plan_settings))


def compressed_like_training(model, num_classes: int, sparsity: float, clusters: int, prune_selection, cluster_selection):
    """A copy of `model` whose kernels hold what TF-MOT's `prune` and `cluster` stages leave in a
    trained model: in each layer `prune_selection` picks (`select_layers`), the `sparsity` fraction
    of smallest magnitudes zeroed; in each `cluster_selection` picks, the other values snapped to
    `clusters` evenly spaced values (zeros kept, as the cluster stage preserves sparsity). 0 leaves
    that step out. How many zeros and distinct values a kernel holds, not where, sets the int8
    file's gzip size, so the copy's file gzips about as the trained model's will; latency and raw
    size do not change (int8 kernels are stored dense)."""
    from edgeseg._keras import keras
    from edgeseg.layer_selection import select_layers

    copy = keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    pruned = set(select_layers(copy, num_classes, prune_selection, stage="prune")) if sparsity else set()
    clustered = set(select_layers(copy, num_classes, cluster_selection, stage="cluster")) if clusters else set()
    for layer in copy.layers:
        if layer.name not in pruned | clustered:
            continue
        kernel = layer.kernel.numpy()
        if layer.name in pruned:
            kernel = np.where(np.abs(kernel) < np.quantile(np.abs(kernel), sparsity), 0.0, kernel).astype(kernel.dtype)
        values = kernel[kernel != 0]
        # A kernel of zeros or of one value holds fewer than `clusters` values already (and has no step).
        if layer.name in clustered and values.size and values.max() > values.min():
            low, step = values.min(), (values.max() - values.min()) / (clusters - 1)
            nearest = low + step * np.clip(np.rint((kernel - low) / step), 0, clusters - 1)
            kernel = np.where(kernel == 0, kernel, nearest).astype(kernel.dtype)
        layer.kernel.assign(kernel)
    return copy


def random_calibration(input_size: tuple[int, int], seed: int = 0, count: int = 8) -> np.ndarray:
    """`count` seeded random images as calibration data: they set int8 ranges, which size and
    latency do not depend on."""
    from edgeseg.quantization.converters import calibration_images

    pixels = np.random.default_rng(seed).integers(0, 256, (count, *input_size, 3), dtype=np.uint8)
    return calibration_images(pixels, count, seed)


def int8_files(models: dict, calibration: np.ndarray) -> dict[str, bytes]:
    """Each model's full-int8 file, by name."""
    return {name: convert_int8(model, calibration) for name, model in models.items()}


def deployment_costs(models: dict, files: dict[str, bytes], threads: tuple[int, ...] = (1, 2), rounds: int = 20) -> dict:
    """Per model name: `macs` and `params` of the model, `bytes` and `gzip_bytes` of its file in
    `files` (`int8_files`), and `latency_ms` per thread count (median; the files timed
    alternately, `rounds` rounds)."""
    latency = alternating_latency(files, threads, rounds=rounds)
    costs = {}
    for name, model in models.items():
        profile = profile_model(model)
        costs[name] = {
            "macs": profile["macs"],
            "params": profile["params"],
            **content_sizes(files[name]),
            "latency_ms": latency[name],
        }
    return costs


def latency_ratio(reference: bytes, candidate: bytes, threads: int, rounds: int = 10) -> float:
    """The candidate file's median latency over the reference's, the two timed alternately."""
    latency = alternating_latency({"reference": reference, "candidate": candidate}, (threads,), rounds=rounds)
    return latency["candidate"][str(threads)] / latency["reference"][str(threads)]


def without_final_resize(model):
    """`model` ending before its last layer, the zoo heads' bilinear upsampling of the logits to the
    input resolution, so timing both shows what that one op costs. ValueError when the last layer
    is not a resize."""
    from edgeseg._keras import keras

    last = model.layers[-1]
    if not isinstance(last, keras.layers.UpSampling2D | keras.layers.Resizing):
        raise ValueError(f"expected a model ending in a resize layer, received one ending in {type(last).__name__}")
    return keras.Model(model.inputs, last.input, name=f"{model.name}_at_head_resolution")


COMMAND_TIMEOUT_SECONDS = 600


def command_latency_ms(tflite: bytes, command: str, key: str) -> float:
    """Median latency in ms of the file on a device: the last line `command` prints when run with the
    file's path in place of `{model}` (an adb script, a vendor's benchmark tool). `key` is the
    recipe key that set the command, named when its output is not a number."""
    with tempfile.NamedTemporaryFile(suffix=".tflite") as file:
        file.write(tflite)
        file.flush()
        argv = shlex.split(command.replace("{model}", shlex.quote(file.name)))
        try:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=COMMAND_TIMEOUT_SECONDS)
        except (OSError, subprocess.TimeoutExpired) as error:
            raise EdgesegError(f"{key}: cannot run {' '.join(argv)!r}: {error}") from None
    lines = done.stdout.strip().splitlines()
    number = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*(ms)?\s*", lines[-1]) if lines else None
    if done.returncode != 0 or number is None or float(number.group(1)) <= 0:
        raise EdgesegError(
            f"{key}: expected exit 0 and a number of ms above 0 as the last line. Received: exit "
            f"{done.returncode}, last line {lines[-1] if lines else ''!r} from {' '.join(argv)!r}"
            + (f", stderr {done.stderr.strip().splitlines()[-1]!r}" if done.stderr.strip() else "")
        )
    return float(number.group(1))


def zoo_costs(
    names: list[str],
    input_size: tuple[int, int],
    num_classes: int,
    seed: int = 0,
    rounds: int = 20,
    head_resolution: bool = False,
) -> dict[str, dict]:
    """`deployment_costs` of untrained zoo models named as `model_from_name` reads them, each
    optionally followed by `:F`, the model after `prune_channels`' removal to a fraction F of its
    MACs (global, l1), and by `@HxW`, its own input size instead of `input_size`, e.g.
    `["lraspp-0.35", "minimal-0.5-os32", "lraspp-1.0:0.3", "lraspp-0.5:0.6@144x192"]`: resolution
    and channels compared in one alternating timing. With `head_resolution`, each model also without
    its final resize (`without_final_resize`), named `<name>@head`: where the logits' upsampling is
    a large share of the latency, removing channels cannot remove it."""
    from edgeseg.recipe import model_from_name, split_input_size

    models, files = {}, {}
    for name in names:
        model_and_keep, size = split_input_size(name)
        model_name, _, keep = model_and_keep.partition(":")
        own_size = size or input_size
        spec = model_from_name(model_name)
        try:
            added = {name: untrained_model(spec, own_size, num_classes, seed, float(keep) if keep else None)}
        except ValueError as error:
            raise RecipeError(f"{name}: expected a MACs fraction within reach after ':'. Received: {keep!r} ({error})") from None
        if head_resolution:
            added[f"{name}@head"] = without_final_resize(added[name])
        models.update(added)
        files.update(int8_files(added, random_calibration(own_size, seed)))
    return deployment_costs(models, files, threads=(1, 2), rounds=rounds)


def costs_markdown(costs: dict[str, dict]) -> str:
    """`zoo_costs` as a Markdown table, latency also as a ratio to the first model's."""
    first = next(iter(costs.values()))
    lines = [
        *table_head("model", "MMACs", "params", "int8 bytes", "latency 1 thread", "latency 2 threads"),
    ]
    for name, cost in costs.items():
        latency = [
            f"{cost['latency_ms'][threads]:.2f} ms ({cost['latency_ms'][threads] / first['latency_ms'][threads]:.2f}x)"
            for threads in ("1", "2")
        ]
        size = f"{cost['macs'] / 1e6:.1f} | {cost['params']:,} | {cost['bytes']:,}"
        lines.append(f"| {name} | {size} | {latency[0]} | {latency[1]} |")
    return "\n".join(lines)
