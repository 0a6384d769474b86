"""The benchmark tool end to end on tiny recipes: arms under two seeds, shared stages trained once,
every seed's figures in benchmark.json, and a rerun that reuses what the first run trained."""

import json
import os
import subprocess
import sys

import pytest

from tests.helpers import REPO, tiny_recipe_dict, write_yaml


def arm(name: str, kd_loss: str) -> dict:
    return tiny_recipe_dict(
        name=name,
        stages=[
            {"train": {"epochs": 1}},
            {"distill": {"epochs": 1, "kd_loss": kd_loss}},
            {"quantize": {"calibration_images": 8}},
            {"verify": {"gallery_images": 0, "latency_runs": 3}},
        ],
    )


def run_tool(*args, cwd):
    return subprocess.run(
        [sys.executable, str(REPO / "tools" / "benchmark.py"), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=1800,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )


@pytest.mark.slow  # 8 tiny trainings (17 min on 2 cores); the statistics and report are unit-tested by default
def test_two_arms_under_two_seeds_share_their_teacher_and_resume(tmp_path):
    kl = write_yaml(tmp_path / "kl.yaml", arm("kl", "kl"))
    cwd = write_yaml(tmp_path / "cwd.yaml", arm("cwd", "cwd"))
    done = run_tool(str(kl), str(cwd), "--seeds", "2", "--no-naive", "--runs-dir", "runs", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stderr.count("01-train: copied from") == 2, "cwd's teacher is kl's, once per seed"
    result = json.loads((tmp_path / "runs" / "kl-benchmark" / "benchmark.json").read_text())
    assert result["seeds"] == [0, 1] and list(result["arms"]) == ["kl", "cwd"]
    for arm_name, runs in result["runs"].items():
        assert list(runs) == ["0", "1"], arm_name
        assert all(set(run["latency_ms"]) == {"1", "2"} and 0 <= run["int8_miou"] <= 1 for run in runs.values())
    kl_runs = result["runs"]["kl"]
    assert result["arms"]["kl"]["int8_miou"]["values"] == [kl_runs["0"]["int8_miou"], kl_runs["1"]["int8_miou"]]
    teacher = [json.loads((tmp_path / "runs" / f"{name}-s0" / "01-train" / "record.json").read_text()) for name in ("kl", "cwd")]
    assert teacher[0] == teacher[1]
    assert "| kl int8 vs its distilled student (mIoU) |" in done.stdout

    again = run_tool(str(kl), str(cwd), "--seeds", "1", "--no-naive", "--runs-dir", "runs", cwd=tmp_path)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "epoch 1:" not in again.stderr and again.stderr.count("reused from") == 6, "train, distill, quantize of both"
