"""`distribute:` settings: the strategy each gives, and one clear line for what cannot work."""

import json

import pytest

from edgeseg._keras import tf
from edgeseg.distribution import strategy_for
from edgeseg.errors import EdgesegError
from edgeseg.recipe import DistributeConfig
from tests.helpers import assert_one_problem, load_error, write_recipe


def test_no_section_is_tensorflows_default_strategy():
    assert strategy_for(None) is tf.distribute.get_strategy()


def test_mirrored_on_the_cpu_it_has_is_one_replica():
    assert strategy_for(DistributeConfig(strategy="mirrored", devices=["/cpu:0"])).num_replicas_in_sync == 1


def test_splitting_the_cpu_after_tensorflow_started_is_one_line():
    tf.constant(1.0) + 1.0  # starts TensorFlow in this process, if no test has yet
    with pytest.raises(EdgesegError, match=r"distribute.devices: 3 CPU devices need the CPU split before TensorFlow starts"):
        strategy_for(DistributeConfig(strategy="mirrored", devices=["/cpu:0", "/cpu:1", "/cpu:2"]))


@pytest.mark.parametrize("tf_config", [None, "not json", json.dumps({"task": {"type": "worker", "index": 0}})])
def test_multi_worker_without_a_cluster_in_tf_config_is_one_line(monkeypatch, tf_config):
    if tf_config is None:
        monkeypatch.delenv("TF_CONFIG", raising=False)
    else:
        monkeypatch.setenv("TF_CONFIG", tf_config)
    with pytest.raises(EdgesegError, match="multi_worker needs TF_CONFIG with a cluster.*Received: TF_CONFIG="):
        strategy_for(DistributeConfig(strategy="multi_worker"))


def test_devices_with_multi_worker_is_a_recipe_error(tmp_path):
    path = write_recipe(tmp_path, distribute={"strategy": "multi_worker", "devices": ["/gpu:0"]})
    assert_one_problem(load_error(path), path, "distribute", "TF_CONFIG", "strategy='multi_worker'")
