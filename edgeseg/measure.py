"""What models cost on the device, measured side by side: MACs and parameters, int8 file size raw and
gzip, and interpreter latency with the files timed alternately in one process.

Latency and size do not depend on the weights, so untrained models measure like trained ones
(the budget search relies on it); calibration images only set the int8 ranges.

Example::

    costs = deployment_costs({"before": model, "after": pruned}, calibration)
    costs["after"]["latency_ms"]["2"] / costs["before"]["latency_ms"]["2"]
"""

import numpy as np

from edgeseg.files import content_sizes
from edgeseg.profile import profile_model
from edgeseg.quantization.converters import convert_int8
from edgeseg.tflite import alternating_latency


def deployment_costs(models: dict, calibration: np.ndarray, threads: tuple[int, ...] = (1, 2), rounds: int = 20) -> dict:
    """Per model name: `macs`, `params`, `bytes` and `gzip_bytes` of its full-int8 file, and
    `latency_ms` per thread count (median; the files timed alternately, `rounds` rounds)."""
    files = {name: convert_int8(model, calibration) for name, model in models.items()}
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
