"""`edgeseg search` on a tiny space: the export meets its budget when measured again, a search run again
resumes its study without repeating a finished trial, an accuracy floor is judged on the finalists,
the naive family's files are timed again beside the finalists, an impossible budget is one line and
exit 4, and the frontier holds only non-dominated points."""

import json
import re

import numpy as np
import pytest

from edgeseg.cli import main
from edgeseg.search import study
from edgeseg.search.candidates import untrained_costs
from edgeseg.search.frontier import naive_points, pareto_front
from edgeseg.tflite import TFLiteSegmenter
from tests.helpers import tiny_recipe_dict, write_yaml

# int8 files at 32 px, measured 2026-11-30 (untrained, with unshared constants, as the search measures
# them): minimal a0.35 433-437 KiB (output stride 32/16; 438.9 KiB exported, trained, with metadata),
# LR-ASPP a0.35 471-475 KiB; so only minimal fits.
SIZE_BUDGET_KB = 455
REFERENCE_LOG = r"measured against the recipe's own model, untrained, [^:]*: ([0-9.]+) ms"


def search_recipe(trials: int, size_kb: float = SIZE_BUDGET_KB) -> dict:
    recipe = tiny_recipe_dict(
        name="tiny_search",
        stages=[
            {"train": {"epochs": 2}},
            {"quantize": {"calibration_images": 8}},
            {"verify": {"gallery_images": 0}},
            {"export": {}},
        ],
        budget={"size_kb": size_kb, "latency_ms": 50.0, "threads": 2},
        search={
            "trials": trials,
            "proxy_epochs": 1,
            "finalists": 1,
            "space": {"arch": ["lraspp", "minimal"], "alpha": [0.35], "output_stride": [16, 32]},
        },
    )
    del recipe["student"]
    # The recipe's own model, the search's first trial, fits the budget and trains.
    recipe["teacher"] = {"arch": "minimal", "alpha": 0.35, "output_stride": 32}
    return recipe


def benchmark(arms: dict[str, tuple[float, float, str]]) -> dict:
    """A benchmark.json (tools/benchmark.py) of `arms`, each {name: (int8 mIoU, latency at 2 threads,
    int8 file)} with one seed."""
    return {
        "arms": {
            arm: {"int8_miou": {"mean": miou}, "latency_ms": {"2": {"mean": latency}}, "bytes": {"mean": 1000.0}}
            for arm, (miou, latency, _) in arms.items()
        },
        "runs": {arm: {"0": {"model_path": path}} for arm, (_, _, path) in arms.items()},
    }


@pytest.mark.ci  # 128 s in CI: two searches, four trainings, and a third search on them
def test_the_chosen_export_meets_the_budget_and_a_killed_search_resumes(tmp_path, capsys, monkeypatch):
    path = write_yaml(tmp_path / "search.yaml", search_recipe(trials=3))
    folder = tmp_path / "runs" / "tiny_search-search"
    measured = []

    def interrupted_at_the_second_candidate(*args):
        if len(measured) == 1:
            raise KeyboardInterrupt
        measured.append(args)
        return untrained_costs(*args)

    monkeypatch.setattr(study, "untrained_costs", interrupted_at_the_second_candidate)
    assert main(["search", str(path), "--runs_dir", str(tmp_path / "runs")]) == 130
    reference = re.findall(REFERENCE_LOG, capsys.readouterr().err)
    assert len(reference) == 1
    finished = {path.parent.parent.name: path.stat().st_mtime_ns for path in folder.glob("trial-*/04-export/record.json")}
    monkeypatch.undo()
    # The naive family: a finished trial's int8 file stands in for the naive model; the benchmark's
    # latency for it (999 ms) is one the search must replace by its own timing.
    naive_file = str(next(folder.glob("trial-*/02-quantize/model.tflite")))
    naive = benchmark({"naive": (0.2, 999.0, naive_file), "tiny": (0.3, 999.0, naive_file)})
    (tmp_path / "benchmark.json").write_text(json.dumps(naive))

    assert main(["search", str(path), "--runs_dir", str(tmp_path / "runs"), "--naive", str(tmp_path / "benchmark.json")]) == 0
    assert re.findall(REFERENCE_LOG, capsys.readouterr().err) == reference, "resumed on the first run's latency scale"
    result = json.loads((folder / "search.json").read_text())
    assert [row["trial"] for row in result["trials"]] == [0, 2, 3], "the interrupted trial 1 failed; new ones took its place"
    assert result["trials"][0]["label"] == "minimal mobilenet_v2 a0.35 os32 32x32 int8", "the first trial: the recipe's own model"
    assert {name: (folder / name / "04-export" / "record.json").stat().st_mtime_ns for name in finished} == finished, (
        "no finished trial ran again"
    )
    assert any(row["state"] == "complete" for row in result["trials"]), "at least one candidate fits the budget and trains"
    over = [row for row in result["trials"] if row.get("over_budget")]
    assert over and all(row["int8_miou"] is None and row["run_dir"] is None for row in over), "over budget: never trained"
    assert len(result["finalists"]) == 1
    model = (folder / "model.tflite").read_bytes()
    assert len(model) / 1024 <= SIZE_BUDGET_KB, "measured again: the exported file meets the size budget"
    assert TFLiteSegmenter(model).latency_ms(runs=20)["median_ms"] <= 50.0
    assert (folder / "frontier.png").is_file() and "Chosen:" in (folder / "search.md").read_text()
    assert [row["label"] for row in result["naive"]] == ["naive"], "edgeseg's own arms are not the naive family"
    assert result["naive"][0]["latency_ms"] < 50.0, "timed again beside the finalists, not the benchmark's 999 ms"
    assert "timed alternately" in result["latency_timing"]
    assert [row["label"] for row in result["versus_naive"]] == ["naive"], "each naive model against the frontier at its cost"
    assert "naive models and lies above" in (folder / "search.md").read_text()

    # An accuracy floor no tiny model reaches is judged on the finalists, trained in full (reused here).
    recipe = search_recipe(trials=3)
    recipe["budget"]["min_miou"] = 0.99
    assert main(["search", str(write_yaml(path, recipe)), "--runs_dir", str(tmp_path / "runs")]) == 4
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("edgeseg: error:")]
    assert len(errors) == 1 and "no candidate meets the budget" in errors[0], errors
    assert re.search(r"int8 mIoU 0\.\d{4} < 0\.99", errors[0]), errors


@pytest.mark.parametrize("names", ["benchmark.json", "first,benchmark"], ids=["one file", "bare names, a tuple to Fire"])
def test_a_naive_benchmark_whose_files_are_gone_is_one_line_and_exit_2(tmp_path, capsys, monkeypatch, names):
    monkeypatch.chdir(tmp_path)
    path = write_yaml(tmp_path / "search.yaml", search_recipe(trials=1))
    model = tmp_path / "model.tflite"
    model.write_bytes(b"")
    (tmp_path / "first").write_text(json.dumps(benchmark({"naive-minimal-0.35": (0.2, 3.0, str(model))})))
    gone = benchmark({"naive": (0.2, 3.0, str(tmp_path / "gone.tflite"))})
    (tmp_path / names.split(",")[-1]).write_text(json.dumps(gone))
    assert main(["search", str(path), "--runs_dir", str(tmp_path / "runs"), "--naive", names]) == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("edgeseg: error:")]
    assert len(errors) == 1 and "--naive" in errors[0] and "gone.tflite" in errors[0]
    assert not (tmp_path / "runs").exists(), "checked before any search work"


def test_the_naive_family_is_the_naive_arms_of_every_benchmark_and_each_arm_once(tmp_path):
    model = tmp_path / "model.tflite"
    model.write_bytes(b"")
    arm = (0.2, 3.0, str(model))
    first, second = benchmark({"naive": arm, "camvid_full": arm}), benchmark({"naive-minimal-0.5-os32": arm})
    points = naive_points([first, second])
    assert [point["label"] for point in points] == ["naive", "naive-minimal-0.5-os32"], "edgeseg's own arm is left out"
    with pytest.raises(ValueError, match="arm naive is in more than one benchmark"):
        naive_points([first, first])
    with pytest.raises(ValueError, match="benchmark 2 has no naive arm"):
        naive_points([first, benchmark({"camvid_full": arm})])


@pytest.mark.ci  # about a minute in CI: one proxy training and one finalist
def test_a_space_smaller_than_the_trials_asked_for_is_measured_once_per_point(tmp_path, capsys):
    recipe = search_recipe(trials=3)
    recipe["search"]["space"] = {"arch": ["minimal"], "alpha": [0.35], "output_stride": [32]}
    path = write_yaml(tmp_path / "search.yaml", recipe)
    assert main(["search", str(path), "--runs_dir", str(tmp_path / "runs")]) == 0
    folder = tmp_path / "runs" / "tiny_search-search"
    assert sorted(path.name for path in folder.glob("trial-*")) == ["trial-000"], "trained once"
    trials = json.loads((folder / "search.json").read_text())["trials"]
    assert [row["state"] for row in trials] == ["complete"], "one point: one trial, not three"
    assert "search: candidate 1 of 1 (0 trained" in capsys.readouterr().err


def test_a_budget_nothing_meets_names_the_closest_candidates_and_exits_4(tmp_path, capsys):
    path = write_yaml(tmp_path / "search.yaml", search_recipe(trials=2, size_kb=1))
    assert main(["search", str(path), "--runs_dir", str(tmp_path / "runs")]) == 4
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("edgeseg: error:")]
    assert len(errors) == 1 and "no candidate meets the budget; the closest:" in errors[0] and "size" in errors[0]
    assert not list((tmp_path / "runs" / "tiny_search-search").glob("trial-*")), "over budget: nothing was trained"


def test_a_latency_budget_relative_to_the_recipe_own_model_is_judged_on_its_scale(tmp_path, capsys):
    recipe = search_recipe(trials=2, size_kb=10_000)
    recipe["budget"] = {"latency_vs_recipe": 0.01}
    assert main(["search", str(write_yaml(tmp_path / "search.yaml", recipe)), "--runs_dir", str(tmp_path / "runs")]) == 4
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("edgeseg: error:")]
    assert len(errors) == 1 and "latency_vs_recipe" in errors[0] and "> 0.01" in errors[0], errors


@pytest.mark.parametrize("seed", range(5))
def test_the_frontier_holds_exactly_the_non_dominated_points(seed):
    rng = np.random.default_rng(seed)
    rows = [{"int8_miou": float(m), "latency_ms": float(t)} for m, t in rng.uniform(size=(30, 2))]
    front = pareto_front(rows, "latency_ms")

    def dominated(row):
        return any(
            other["int8_miou"] >= row["int8_miou"] and other["latency_ms"] <= row["latency_ms"] and other != row for other in rows
        )

    assert front == sorted([row for row in rows if not dominated(row)], key=lambda row: row["latency_ms"])


@pytest.mark.ci  # about 90 s: two worker processes at once, four trials and a finalist each
def test_two_workers_started_together_share_one_study_and_one_latency_scale(tmp_path):
    import subprocess
    import sys

    import optuna

    recipe = search_recipe(trials=4)
    recipe["search"]["storage"] = f"sqlite:///{tmp_path / 'shared.db'}"
    path = write_yaml(tmp_path / "search.yaml", recipe)
    command = [sys.executable, "-m", "edgeseg", "search", str(path), "--runs_dir"]
    workers = [subprocess.Popen([*command, str(tmp_path / f"worker{n}")], stderr=subprocess.PIPE, text=True) for n in (1, 2)]
    errors = [worker.communicate(timeout=600)[1] for worker in workers]
    assert [worker.returncode for worker in workers] == [0, 0], errors
    shared = optuna.load_study(study_name="tiny_search", storage=recipe["search"]["storage"])
    done = {tuple(sorted(trial.params.items())) for trial in shared.trials if trial.state.is_finished()}
    assert len(done) == 4, "the space's four candidates, each measured by one of the workers"
    results = [json.loads((tmp_path / f"worker{n}" / "tiny_search-search" / "search.json").read_text()) for n in (1, 2)]
    assert results[0]["reference"]["latency_ms"] == results[1]["reference"]["latency_ms"], "one scale for both"
