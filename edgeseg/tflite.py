"""Running `.tflite` files with the LiteRT interpreter: predictions, op listing, latency.

Example:
    >>> segmenter = TFLiteSegmenter(Path("runs/quickstart/model.tflite"), threads=2)
    >>> segmenter.predict_labels(images).shape
    (96, 64, 64)
"""

import time
from pathlib import Path

import numpy as np
from ai_edge_litert.interpreter import Interpreter, OpResolverType

from edgeseg.errors import ModelError
from edgeseg.quiet import native_stderr_silenced

INTEGER_TYPES = (np.int8, np.uint8, np.int16)


class TFLiteSegmenter:
    """A segmentation `.tflite` (float or quantized): RGB 0..255 image in, logits or class ids out."""

    def __init__(self, model: bytes | Path, threads: int = 2, source: str | None = None):
        self.source = source or (str(model) if isinstance(model, Path) else "<tflite bytes>")
        self.content = Path(model).read_bytes() if isinstance(model, Path) else model
        try:
            with native_stderr_silenced():  # the XNNPACK notice is printed when tensors are allocated
                self.interpreter = Interpreter(model_content=self.content, num_threads=threads)
                self.interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as error:
            raise ModelError(f"{self.source}: not a loadable .tflite model ({str(error).splitlines()[0][:200]})") from None
        self.input = self.interpreter.get_input_details()[0]
        self.output = self.interpreter.get_output_details()[0]
        shape = tuple(self.input["shape"])
        if len(shape) != 4 or shape[-1] != 3:
            raise ModelError(f"{self.source}: expected an image input [1, H, W, 3]. Received: {list(shape)}")
        self.input_size = (int(shape[1]), int(shape[2]))

    @property
    def input_quantization(self) -> tuple[float, int]:
        """(scale, zero_point) of the input; (0.0, 0) for a float input."""
        return tuple(self.input["quantization"])

    def predict_raw(self, image: np.ndarray) -> np.ndarray:
        """The model's raw output for one RGB uint8 image [H, W, 3] (batch dimension removed)."""
        self.interpreter.set_tensor(self.input["index"], self._to_input(image)[None])
        self.interpreter.invoke()
        return self.interpreter.get_tensor(self.output["index"])[0]

    def predict_labels(self, images: np.ndarray) -> np.ndarray:
        """Class ids [N, H, W]; argmax runs on the raw output since quantization preserves order."""
        outputs = [self.predict_raw(image) for image in images]
        if outputs[0].ndim == 3:
            return np.stack([o.argmax(axis=-1) for o in outputs]).astype(np.uint8)
        return np.stack(outputs).astype(np.uint8)

    def latency_ms(self, runs: int = 30, warmup: int = 5) -> dict:
        """Median and p90 of `runs` timed invokes after `warmup` untimed ones."""
        image = np.zeros((*self.input_size, 3), np.uint8)
        self.interpreter.set_tensor(self.input["index"], self._to_input(image)[None])
        for _ in range(warmup):
            self.interpreter.invoke()
        times = []
        for _ in range(runs):
            start = time.perf_counter()
            self.interpreter.invoke()
            times.append((time.perf_counter() - start) * 1000)
        return {"median_ms": float(np.median(times)), "p90_ms": float(np.percentile(times, 90)), "runs": runs}

    def op_summary(self) -> list[dict]:
        """Each op of the file (as written, before any delegate) with its input and output dtypes."""
        plain = Interpreter(
            model_content=self.content, experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
        )
        tensors = {t["index"]: np.dtype(t["dtype"]).name for t in plain.get_tensor_details()}
        return [
            {
                "op": op["op_name"],
                "inputs": [tensors.get(i, "?") for i in op["inputs"] if i >= 0],
                "outputs": [tensors.get(i, "?") for i in op["outputs"]],
            }
            for op in plain._get_ops_details()
        ]

    def float_ops(self) -> list[str]:
        """Ops computing in float: in a full-integer model, each one is a fallback to flag."""
        return sorted({op["op"] for op in self.op_summary() if "float32" in op["outputs"]})

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
