"""`distribute: mirrored` on two logical CPU devices trains like one device, through the real CLI.

Each run is its own process: TensorFlow splits the CPU into logical devices only before it starts.
"""

import json

import pytest

from tests.helpers import run_cli, tiny_recipe_dict, write_yaml

# Two trainings through the CLI (282 s in the default suite of 2026-11-30); the strategy each
# `distribute:` setting gives is checked by default in tests/unit/test_distribution.py.
pytestmark = pytest.mark.slow

TWO_CPUS = {"strategy": "mirrored", "devices": ["/cpu:0", "/cpu:1"]}


def trained(tmp_path, name: str, **overrides) -> tuple[dict, dict, str]:
    stages = [{"train": {"epochs": 1, "lr": 0.003}}, {"distill": {"epochs": 1, "lr": 0.003}}]
    recipe = write_yaml(tmp_path / f"{name}.yaml", tiny_recipe_dict(name=name, stages=stages, **overrides))
    completed = run_cli("export", str(recipe), cwd=tmp_path)
    assert completed.returncode == 0, completed.stderr[-3000:]
    run_dir = tmp_path / "runs" / name
    records = [json.loads((run_dir / folder / "record.json").read_text()) for folder in ("01-train", "02-distill")]
    return *records, completed.stderr + completed.stdout


@pytest.fixture(scope="module")
def single_and_mirrored(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("distribute")
    return trained(workdir, "single"), trained(workdir, "mirrored", distribute=TWO_CPUS)


def test_mirrored_run_says_it_uses_two_replicas(single_and_mirrored):
    (*_, single_log), (*_, mirrored_log) = single_and_mirrored
    assert "distribute: mirrored over 2 replicas" in mirrored_log
    assert "distribute:" not in single_log


def test_mirrored_losses_match_one_device_within_tolerance(single_and_mirrored):
    # Each replica normalizes BatchNorm over its half of the batch, so losses agree closely, not exactly.
    (single_train, single_distill, _), (mirrored_train, mirrored_distill, _) = single_and_mirrored
    for single, mirrored in ((single_train, mirrored_train), (single_distill, mirrored_distill)):
        for one, two in zip(single["epochs"], mirrored["epochs"], strict=True):
            assert two["loss"] == pytest.approx(one["loss"], rel=0.1), (single["epochs"], mirrored["epochs"])
