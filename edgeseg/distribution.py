"""Training on several devices with `tf.distribute`, as the recipe's `distribute:` section says.

`mirrored` keeps one copy of the model per device of this machine (every GPU by default) and
averages their gradients; `multi_worker` does the same across machines, each started with its own
`TF_CONFIG` (see docs/TRAINING.md). `data.batch_size` is the global batch, split between replicas.
The training stages (`train`, `distill`, `prune`, `cluster`) build and fit their models under the
strategy's scope; each hands the next stage a plain single-device copy, so saving, conversion and
scoring never see distributed variables.

Example::

    strategy = strategy_for(DistributeConfig(strategy="mirrored", devices=["/cpu:0", "/cpu:1"]))
    strategy.num_replicas_in_sync
"""

import json
import os
import re

from edgeseg._keras import tf
from edgeseg.errors import EdgesegError

_CPU = re.compile(r"^/(?:device:)?cpu:(\d+)$", re.IGNORECASE)


def strategy_for(config) -> tf.distribute.Strategy:
    """The strategy of a recipe's `distribute:` section, or TensorFlow's default one for `None`.

    Naming more CPU devices than the machine has splits its CPU into that many logical devices,
    which TensorFlow allows only before it first runs anything: a way to try `mirrored` without GPUs.
    """
    if config is None:
        return tf.distribute.get_strategy()
    if config.strategy == "multi_worker":
        _check_tf_config()
        return tf.distribute.MultiWorkerMirroredStrategy()
    if config.devices:
        _split_cpu(config.devices)
    return tf.distribute.MirroredStrategy(config.devices)


def _split_cpu(devices: list[str]) -> None:
    wanted = max((int(match.group(1)) + 1 for match in map(_CPU.match, devices) if match), default=0)
    cpu = tf.config.list_physical_devices("CPU")[0]
    # Listing logical devices would start TensorFlow; the configuration can be read without that.
    if wanted <= max(1, len(tf.config.get_logical_device_configuration(cpu) or ())):
        return
    try:
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * wanted)
    except RuntimeError:
        raise EdgesegError(
            f"distribute.devices: {wanted} CPU devices need the CPU split before TensorFlow starts, "
            f"and it has already started in this process. Received: devices={devices}"
        ) from None


def _check_tf_config() -> None:
    raw = os.environ.get("TF_CONFIG")
    try:
        cluster = json.loads(raw)["cluster"] if raw else None
    except (ValueError, KeyError, TypeError):
        cluster = None
    if not cluster:
        raise EdgesegError(
            "distribute.strategy multi_worker needs TF_CONFIG with a cluster and this worker's task "
            "(docs/TRAINING.md). Received: TF_CONFIG=" + repr(raw)
        )
