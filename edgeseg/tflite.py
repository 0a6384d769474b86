"""Running `.tflite` files with the LiteRT interpreter: predictions, op listing, latency.

Example::

    segmenter = TFLiteSegmenter(Path("runs/quickstart/model.tflite"), threads=2)
    segmenter.predict_labels(images).shape
"""

import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from ai_edge_litert.interpreter import Interpreter, OpResolverType

from edgeseg.errors import ModelError
from edgeseg.kernels import max_values_per_channel
from edgeseg.quiet import native_stderr_silenced

INTEGER_TYPES = (np.int8, np.uint8, np.int16)
# Ops with a weight tensor as second input, and the axis of its output channels.
OUTPUT_CHANNEL_AXIS_BY_KERNEL_OP = {"CONV_2D": 0, "FULLY_CONNECTED": 0, "DEPTHWISE_CONV_2D": 3}
# Ops in the TFLite GPU delegate guide's list of supported ops (float16/float32), plus the
# quantize/dequantize pair its quantized-model support adds. Anything else falls back to the CPU.
GPU_DELEGATE_OPS = frozenset(
    {
        "ADD",
        "AVERAGE_POOL_2D",
        "CONCATENATION",
        "CONV_2D",
        "DEPTHWISE_CONV_2D",
        "EXP",
        "FULLY_CONNECTED",
        "LOGICAL_AND",
        "LOGISTIC",
        "LSTM",
        "MAX_POOL_2D",
        "MAXIMUM",
        "MINIMUM",
        "MUL",
        "PAD",
        "PRELU",
        "RELU",
        "RELU6",
        "RESHAPE",
        "RESIZE_BILINEAR",
        "SOFTMAX",
        "STRIDED_SLICE",
        "SUB",
        "TRANSPOSE_CONV",
        "QUANTIZE",
        "DEQUANTIZE",
    }
)


class TFLiteSegmenter:
    """A segmentation `.tflite` (float or quantized): RGB 0..255 image in, logits or class ids out."""

    def __init__(self, model: bytes | Path, threads: int = 2, source: str | None = None):
        self.source = source or (str(model) if isinstance(model, Path) else "<tflite bytes>")
        try:
            self.content = Path(model).read_bytes() if isinstance(model, Path) else model
        except OSError as error:
            raise ModelError(f"{self.source}: cannot read the model file: {error.strerror or error}") from None
        try:
            with native_stderr_silenced():  # the XNNPACK notice is printed when tensors are allocated
                self.interpreter = Interpreter(model_content=self.content, num_threads=threads)
                self.interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as error:
            raise ModelError(f"{self.source}: not a loadable .tflite model ({str(error).splitlines()[0][:200]})") from None
        self.input = self.interpreter.get_input_details()[0]
        self.output = self.interpreter.get_output_details()[0]
        shape = tuple(int(side) for side in self.input["shape"])
        if len(shape) != 4 or shape[-1] != 3:
            raise ModelError(f"{self.source}: expected an image input [1, H, W, 3]. Received: {list(shape)}")
        self.input_size = (shape[1], shape[2])

    @property
    def input_quantization(self) -> tuple[float, int]:
        """(scale, zero_point) of the input; (0.0, 0) for a float input."""
        scale, zero_point = self.input["quantization"]
        return float(scale), int(zero_point)

    def predict_raw(self, image: np.ndarray) -> np.ndarray:
        """The model's raw output for one RGB uint8 image [H, W, 3] (batch dimension removed)."""
        self.interpreter.set_tensor(self.input["index"], self._to_input(image)[None])
        self.interpreter.invoke()
        return self.interpreter.get_tensor(self.output["index"])[0]

    @property
    def outputs_labels(self) -> bool:
        """Whether the output is class ids [1, H, W] (`export: {output: labels}`) rather than logits."""
        return len(self.output["shape"]) == 3 and self.output["dtype"] == np.uint8 and not self.output["quantization"][0]

    def predict_logits(self, images: np.ndarray) -> np.ndarray:
        """Float logits [N, H, W, C], dequantized from an integer output."""
        if len(self.output["shape"]) != 4:
            raise ModelError(
                f"{self.source}: expected logits [1, H, W, C]. Received: output shape {[int(d) for d in self.output['shape']]}"
            )
        raw = np.stack([self.predict_raw(image) for image in images])
        scale, zero_point = self.output["quantization"]
        if self.output["dtype"] in INTEGER_TYPES and scale:
            return (raw.astype(np.float32) - zero_point) * scale
        return raw.astype(np.float32)

    def predict_labels(self, images: np.ndarray) -> np.ndarray:
        """Class ids [N, H, W]: the model's own, or the argmax of its logits."""
        if self.outputs_labels:
            return np.stack([self.predict_raw(image) for image in images])
        return self.predict_logits(images).argmax(axis=-1).astype(np.uint8)

    def latency_ms(self, runs: int = 30, warmup: int = 5) -> dict:
        """Median and p90 of `runs` timed invokes after `warmup` untimed ones."""
        self.timed_invokes(warmup)
        times = self.timed_invokes(runs)
        return {"median_ms": float(np.median(times)), "p90_ms": float(np.percentile(times, 90)), "runs": runs}

    def timed_invokes(self, runs: int) -> list[float]:
        """Milliseconds of each of `runs` invokes on the same (black) image."""
        image = np.zeros((*self.input_size, 3), np.uint8)
        self.interpreter.set_tensor(self.input["index"], self._to_input(image)[None])
        times = []
        for _ in range(runs):
            start = time.perf_counter()
            self.interpreter.invoke()
            times.append((time.perf_counter() - start) * 1000)
        return times

    def op_summary(self) -> list[dict]:
        """Each op of the file (as written, before any delegate) with its input and output dtypes."""
        interpreter = self._interpreter_without_delegates()
        tensors = {t["index"]: np.dtype(t["dtype"]).name for t in interpreter.get_tensor_details()}
        return [
            {
                "op": op["op_name"],
                "inputs": [tensors.get(i, "?") for i in op["inputs"] if i >= 0],
                "outputs": [tensors.get(i, "?") for i in op["outputs"]],
            }
            for op in interpreter._get_ops_details()
        ]

    def float_ops(self) -> list[str]:
        """Ops computing in float: in a full-integer model, each one is a fallback to flag."""
        return _float_ops(self.op_summary())

    def op_report(self) -> dict:
        """Op types with counts and dtypes, float ops, and ops outside the GPU delegate's documented list."""
        summary = self.op_summary()
        counts: dict[str, dict] = {}
        for op in summary:
            entry = counts.setdefault(op["op"], {"op": op["op"], "count": 0, "dtypes": set()})
            entry["count"] += 1
            entry["dtypes"].update(op["inputs"] + op["outputs"])
        ops = [{**entry, "dtypes": sorted(entry["dtypes"])} for entry in sorted(counts.values(), key=lambda e: -e["count"])]
        return {
            "ops": ops,
            "float_ops": _float_ops(summary),
            "not_gpu_delegate_ops": sorted(name for name in counts if name not in GPU_DELEGATE_OPS),
        }

    def kernel_stats(self, layer_names=None) -> dict[str, dict]:
        """Weights of each convolution and fully connected op, by the Keras layer they came from:
        the fraction of zeros and the most distinct values in any one output channel.

        The converter names weights `<model>/<layer>/<op>`, joined by `;` when it fused several
        layers (a depthwise kernel with its BatchNorm); the name chosen is the first of those
        layers in `layer_names`, when given.

        Example::

            TFLiteSegmenter(Path("model.tflite")).kernel_stats()["block1_project_conv"]["sparsity"]
        """
        return {
            name: {
                "dtype": np.dtype(kernel.dtype).name,
                "sparsity": float(np.mean(kernel == 0)),
                "max_unique_per_channel": max_values_per_channel(kernel, OUTPUT_CHANNEL_AXIS_BY_KERNEL_OP[op]),
            }
            for name, op, kernel in self._stored_kernels(layer_names)
        }

    def with_kernels_zeroed(self, layer_names=None) -> bytes:
        """The file's bytes with the stored kernels of `layer_names` (default: every kernel) set to
        zeros, everything else (biases, quantization parameters, graph) as written. Its gzip size is
        the floor that no more pruning or clustering of those layers can go below.

        Example::

            zeroed = segmenter.with_kernels_zeroed(["block1_project_conv"])
            content_sizes(zeroed)["gzip_bytes"] < content_sizes(segmenter.content)["gzip_bytes"]
        """
        wanted = None if layer_names is None else set(layer_names)
        content = bytearray(self.content)
        found, zeroed = set(), set()
        for name, _, kernel in self._stored_kernels(wanted):
            if wanted is not None and name not in wanted:
                continue
            found.add(name)
            # A constant tensor's bytes are stored as they are read, in one piece of the file; the
            # converter stores identical constants once, so a kernel shared by several ops is zeroed once.
            stored = kernel.tobytes()
            if stored in zeroed:
                continue
            start = content.find(stored)
            if start < 0:
                raise ModelError(f"{self.source}: the kernel of {name} is not stored as one piece of the file")
            content[start : start + len(stored)] = bytes(len(stored))
            zeroed.add(stored)
        missing = sorted((wanted or set()) - found)
        if missing:
            raise ModelError(
                f"{self.source}: no convolution or fully connected op has the kernel of "
                f"{', '.join(missing)}. Received: layer_names={sorted(wanted or ())}"
            )
        return bytes(content)

    def _stored_kernels(self, layer_names=None):
        """(layer name, op name, stored weights) of each convolution and fully connected op; see `kernel_stats`."""
        interpreter = self._interpreter_without_delegates()
        details = {t["index"]: t for t in interpreter.get_tensor_details()}
        ops = interpreter._get_ops_details()
        # float16 weights reach their op through a DEQUANTIZE; the stored tensor is its input.
        stored_as = {op["outputs"][0]: op["inputs"][0] for op in ops if op["op_name"] == "DEQUANTIZE"}
        for op in ops:
            if op["op_name"] not in OUTPUT_CHANNEL_AXIS_BY_KERNEL_OP or len(op["inputs"]) < 2:
                continue
            weights = details[stored_as.get(op["inputs"][1], op["inputs"][1])]
            candidates = [part.split("/")[1] for part in weights["name"].split(";") if part.count("/") >= 2]
            # TF-MOT's QAT wrapper names each layer `quant_<layer>`.
            unwrapped = [name.removeprefix("quant_") if layer_names and name not in layer_names else name for name in candidates]
            known = [name for name in unwrapped if layer_names is None or name in layer_names]
            try:
                kernel = interpreter.get_tensor(weights["index"])
            except ValueError:  # a computed, not constant, weight tensor
                continue
            yield (known or candidates or [weights["name"]])[0], op["op_name"], kernel

    def _interpreter_without_delegates(self) -> Interpreter:
        """The file as written: ops and tensors before any delegate rewrites them."""
        return Interpreter(
            model_content=self.content, experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
        )

    def _to_input(self, image: np.ndarray) -> np.ndarray:
        if image.shape[:2] != self.input_size:
            raise ValueError(f"image is {image.shape[:2]} but the model takes {self.input_size}")
        dtype = self.input["dtype"]
        if dtype in INTEGER_TYPES:
            scale, zero_point = self.input_quantization
            if (scale, zero_point) == (1.0, 0) and dtype == np.uint8:
                return image.astype(np.uint8)
            info = np.iinfo(dtype)
            return np.clip(np.round(image / scale + zero_point), info.min, info.max).astype(dtype)
        return image.astype(dtype)


def _float_ops(summary: list[dict]) -> list[str]:
    return sorted({op["op"] for op in summary if "float32" in op["outputs"]})


def latency_by_threads(model: bytes, threads: list[int], runs: int = 30) -> dict[str, dict]:
    """Median and p90 invoke latency for each thread count, keyed "1", "2", ..."""
    return {str(count): TFLiteSegmenter(model, threads=count).latency_ms(runs=runs) for count in sorted(set(threads))}


def alternating_latency(
    models: dict[str, bytes], threads=(1, 2), rounds: int = 20, runs: int = 10, warmup: int = 5
) -> dict[str, dict[str, float]]:
    """Median invoke latency in ms of each model, per thread count ("1", "2", ...), the models timed
    alternately: `rounds` rounds of `runs` invokes of each model in turn, after `warmup` untimed
    ones. Load on the machine and CPU clocks that drift then hit every model alike, so their ratios
    hold where absolute times do not.

    Example::

        alternating_latency({"naive": naive_bytes, "pruned": pruned_bytes})["pruned"]["2"]
    """
    result: dict[str, dict[str, float]] = {name: {} for name in models}
    for count in threads:
        segmenters = {name: TFLiteSegmenter(content, threads=count) for name, content in models.items()}
        times: dict[str, list[float]] = {name: [] for name in models}
        for segmenter in segmenters.values():
            segmenter.timed_invokes(warmup)
        for _ in range(rounds):
            for name, segmenter in segmenters.items():
                times[name] += segmenter.timed_invokes(runs)
        for name in models:
            result[name][str(count)] = float(np.median(times[name]))
    return result


def interpreter_memory_kib(model: bytes) -> int | None:
    """Resident memory an interpreter adds (load, allocate, one invoke), measured in a fresh process.

    A fresh process, because allocators keep freed memory: measured in this one after other
    interpreters ran, the growth reads as zero. None where /proc is not available.
    """
    if not Path("/proc/self/status").exists():
        return None
    with tempfile.NamedTemporaryFile(suffix=".tflite") as file:
        file.write(model)
        file.flush()
        completed = subprocess.run([sys.executable, "-c", _MEMORY_PROBE, file.name], capture_output=True, text=True, timeout=120)
    lines = completed.stdout.split()
    return int(lines[-1]) if completed.returncode == 0 and lines else None


_MEMORY_PROBE = """
import sys
import numpy as np
from ai_edge_litert.interpreter import Interpreter

def rss_kib():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])

before = rss_kib()
interpreter = Interpreter(model_path=sys.argv[1], num_threads=1)
interpreter.allocate_tensors()
details = interpreter.get_input_details()[0]
interpreter.set_tensor(details["index"], np.zeros(details["shape"], details["dtype"]))
interpreter.invoke()
print(rss_kib() - before)
"""
