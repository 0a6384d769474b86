"""The one place edgeseg imports TensorFlow, tf_keras and TF-MOT.

TF-MOT only supports the Keras 2 API, so `TF_USE_LEGACY_KERAS` must be set before
TensorFlow is first imported; TensorFlow's native start-up chatter (CUDA probes, oneDNN
notices) is written straight to file descriptor 2, so it is captured there and replayed
only if the import fails.

Reproducible figures: on a CPU, TensorFlow's float results depend on the instruction set its
oneDNN kernels pick at run time (the matrix products behind every convolution use oneDNN's sgemm
even with TensorFlow's oneDNN rewrites off, and Intel CPUs with AVX-512 VNNI turn those rewrites
on). Measured on one machine (docs/BENCHMARKS.md, "Reproducibility"): the same recipe gives other
figures when oneDNN is capped to AVX or SSE4.1 instead of the machine's AVX2, and the same
figures, byte for byte, run after run. So edgeseg caps oneDNN at AVX2, which every x86-64 CPU of
the last decade has, and keeps TensorFlow's oneDNN rewrites off, unless the environment already
sets these variables. The number of intra-op threads changes the figures too; see the README.
"""

import logging
import os

from edgeseg.quiet import native_stderr_silenced

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
os.environ.setdefault("ONEDNN_MAX_CPU_ISA", "AVX2")


with native_stderr_silenced():
    import absl.logging
    import tensorflow as tf
    import tensorflow_model_optimization as tfmot
    import tf_keras as keras

absl.logging.set_verbosity(absl.logging.ERROR)
tf.get_logger().setLevel(logging.ERROR)

__all__ = ["tf", "keras", "tfmot", "native_stderr_silenced", "numeric_environment"]


def numeric_environment() -> dict:
    """What a run's float figures depend on besides the recipe: TensorFlow's version, the oneDNN
    settings above, the CPU and the intra-op threads; recorded in every report, so a figure that
    differs on another machine can be told apart from a change in the recipe or the code."""
    import platform

    fields = cpu_fields(_read("/proc/cpuinfo"))
    flags = set(fields.get("flags", "").split())
    return {
        "tensorflow": tf.__version__,
        "TF_ENABLE_ONEDNN_OPTS": os.environ.get("TF_ENABLE_ONEDNN_OPTS"),
        "ONEDNN_MAX_CPU_ISA": os.environ.get("ONEDNN_MAX_CPU_ISA"),
        "intra_op_threads": tf.config.threading.get_intra_op_parallelism_threads() or len(os.sched_getaffinity(0)),
        "cpu": fields.get("model name", platform.processor()),
        # A model name such as "AMD EPYC" covers CPU generations that gave different figures.
        "cpu_family_model": f"{fields['cpu family']}/{fields['model']}" if "cpu family" in fields else None,
        "cpu_cache": fields.get("cache size"),
        "cpu_isa": " ".join(flag for flag in ISA_FLAGS if flag in flags),
        "machine": platform.machine(),
    }


ISA_FLAGS = ("avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "avx512_fp16", "avx_vnni", "amx_tile")
"""The instruction-set extensions among which oneDNN and XNNPACK choose kernels."""


def cpu_fields(cpuinfo: str) -> dict[str, str]:
    """The first processor's fields of a /proc/cpuinfo text, by name."""
    lines = cpuinfo.split("\n\n")[0].splitlines()
    return {key.strip(): value.strip() for key, _, value in (line.partition(":") for line in lines) if key.strip()}


def _read(path: str) -> str:
    try:
        with open(path) as file:
            return file.read()
    except OSError:
        return ""  # not Linux: the model name comes from `platform`
