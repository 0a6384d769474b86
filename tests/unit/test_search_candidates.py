"""The budget search's pieces that need no training: what the recipe may ask for, the recipe a
candidate trains with, and how a candidate's costs are judged against the budget."""

import dataclasses
import sys

import pytest

from edgeseg.errors import EdgesegError
from edgeseg.recipe import BudgetConfig, parse_recipe
from edgeseg.search.candidates import (
    Candidate,
    LatencyReference,
    budget_violations,
    candidate_from_params,
    candidate_recipe,
    latencies_together,
    latency_reference,
    recipe_params,
    stride_obstacle,
)
from tests.helpers import load_error, tiny_recipe_dict, write_yaml


def search_recipe(**space) -> dict:
    return tiny_recipe_dict(
        budget={"size_kb": 500},
        search={"trials": 2, "proxy_epochs": 2, "finalists": 1, "space": {"arch": ["minimal"], **space}},
    )


@pytest.mark.parametrize(
    "space,expected",
    [
        ({"channel_keep": [0.5, 1.2]}, ["search.space.channel_keep", "values in (0, 1]", "1.2"]),
        ({"input_size": [[100, 100]]}, ["search.space.input_size", "multiple of 16", "[100, 100]"]),
        ({"alpha": [2.0]}, ["search.space.alpha", "(0, 1.4]"]),
        ({"arch": ["unet"]}, ["search.space.arch", "unet"]),
        ({"sparsity": [0.5, 1.0]}, ["search.space.sparsity", "[0, 1)", "1.0"]),
        ({"clusters": [16, 1]}, ["search.space.clusters", "2 to 256", "[16, 1]"]),
    ],
)
def test_a_bad_search_space_is_one_line_naming_the_key_and_the_value(tmp_path, space, expected):
    message = load_error(write_yaml(tmp_path / "search.yaml", search_recipe(**space)))
    assert len(message.splitlines()) == 1
    for part in expected:
        assert part in message


def test_a_searched_sparsity_cannot_replace_one_that_m_by_n_fixes(tmp_path):
    recipe = search_recipe(sparsity=[0.0, 0.5])
    recipe["stages"] = [{"prune": {"m_by_n": [2, 4]}} if "prune" in stage else stage for stage in recipe["stages"]]
    message = load_error(write_yaml(tmp_path / "search.yaml", recipe))
    assert "search.space.sparsity" in message and "m_by_n=[2, 4]" in message and len(message.splitlines()) == 1


def test_finalists_cannot_outnumber_trials(tmp_path):
    recipe = search_recipe()
    recipe["search"]["finalists"] = 3
    assert "finalists (3) cannot exceed trials (2)" in load_error(write_yaml(tmp_path / "search.yaml", recipe))


def test_a_pruned_candidate_removes_channels_before_tf_mot_and_fine_tunes_half_the_searched_epochs():
    recipe = parse_recipe(search_recipe(channel_keep=[0.5]))
    candidate = Candidate("minimal", "mobilenet_v2", 0.5, 32, (64, 96), 0.5, "int8")
    for epochs, expected in ((4, 2), (None, 1)):  # proxy: 4 epochs; full: the recipe's distill has 1
        trial = candidate_recipe(recipe, candidate, "trial-000", epochs=epochs)
        names = [name for name, _ in trial.stage_sections()]
        assert names == ["train", "distill", "prune_channels", "prune", "cluster", "quantize", "verify", "export"]
        sections = dict(trial.stage_sections())
        assert sections["prune_channels"].keep == 0.5 and sections["prune_channels"].epochs == expected
        assert sections["prune_channels"].distill is not None, "guided by the teacher"
        assert sections["train"].epochs == 2, "the teacher's training is every candidate's: it keeps its epochs"
        if epochs is not None:
            assert sections["distill"].epochs == sections["prune"].epochs == epochs
        assert sections["verify"].min_miou is None, "the search judges the budget, not verify's gates"
        assert trial.student.arch == "minimal" and trial.student.output_stride == 32
        assert tuple(trial.data.input_size) == (64, 96)


def test_a_pruned_candidate_takes_the_recipe_own_prune_channels_settings_but_its_target():
    recipe = search_recipe(channel_keep=[0.5])
    own = {"target": "latency", "keep": 0.8, "measure_command": "time-on-phone {model}", "importance": "taylor"}
    own.update(round_to=4, epochs=20, warmup_epochs=5, early_stopping=3, steps=3)
    recipe["stages"].insert(2, {"prune_channels": own})  # after distill: it prunes the searched student
    candidate = Candidate("minimal", "mobilenet_v2", 0.5, 32, (64, 96), 0.5, "int8")
    for epochs, early_stopping, steps in ((4, None, 2), (None, 3, 1)):  # 2 and 1 fine-tune epochs
        trial = candidate_recipe(parse_recipe(recipe), candidate, "trial-000", epochs=epochs)
        names = [name for name, _ in trial.stage_sections()]
        assert names[:3] == ["train", "distill", "prune_channels"] and names.count("prune_channels") == 1
        pruning = dict(trial.stage_sections())["prune_channels"]
        assert (pruning.target, pruning.keep, pruning.measure_command) == ("macs", 0.5, None)
        assert (pruning.importance, pruning.round_to, pruning.early_stopping) == ("taylor", 4, early_stopping)
        assert pruning.distill is None, "the recipe's stage learns from the labels alone, and so does the candidate's"
        assert pruning.warmup_epochs < pruning.epochs and pruning.steps == steps


def test_a_pruned_candidate_costs_are_measured_on_widths_planned_with_its_stage_settings():
    from edgeseg.search.candidates import untrained_tflite

    recipe = search_recipe(channel_keep=[0.5])
    candidate = Candidate("minimal", "mobilenet_v2", 0.5, 32, (64, 96), 0.5, "int8")
    full, _ = untrained_tflite(parse_recipe(recipe), dataclasses.replace(candidate, channel_keep=1.0))
    full_widths = {layer.name: layer.filters for layer in full.layers if getattr(layer, "filters", None)}

    def narrowed_widths(own_stage: dict) -> list[int]:
        recipe["stages"].insert(2, {"prune_channels": own_stage})
        model, _ = untrained_tflite(parse_recipe(recipe), candidate)
        del recipe["stages"][2]
        widths = [(layer.name, layer.filters) for layer in model.layers if getattr(layer, "filters", None)]
        return [width for name, width in widths if width < full_widths[name]]

    assert any(width % 16 for width in narrowed_widths({})), "round_to 8 by default: widths of 8, 24, ..."
    assert all(width % 16 == 0 for width in narrowed_widths({"round_to": 16, "min_channels": 16}))


def test_a_recipe_pruning_its_teacher_keeps_it_and_cannot_search_pruned_students(tmp_path):
    recipe = search_recipe(channel_keep=[1.0])
    recipe["stages"].insert(1, {"prune_channels": {"keep": 0.9, "epochs": 1}})  # before distill: the teacher's
    candidate = Candidate("minimal", "mobilenet_v2", 0.5, 32, (64, 96), 1.0, "int8")
    trial = candidate_recipe(parse_recipe(recipe), candidate, "trial-000", epochs=4)
    assert [name for name, _ in trial.stage_sections()][:3] == ["train", "prune_channels", "distill"]
    assert dict(trial.stage_sections())["prune_channels"].epochs == 1, "shared by every candidate: as the recipe says"
    recipe["search"]["space"]["channel_keep"] = [1.0, 0.5]
    message = load_error(write_yaml(tmp_path / "search.yaml", recipe))
    assert "search.space.channel_keep" in message and "[1.0, 0.5]" in message and len(message.splitlines()) == 1


def test_a_candidate_sets_tf_mot_sparsity_and_clusters_in_place_of_the_recipe_own_stages():
    recipe = parse_recipe(search_recipe(sparsity=[0.0, 0.75], clusters=[0, 32]))
    base = ("minimal", "mobilenet_v2", 0.5, 32, (64, 96))

    def stages(candidate, epochs=3):
        return dict(candidate_recipe(recipe, candidate, "trial-000", epochs=epochs).stage_sections())

    both = stages(Candidate(*base, 0.5, "int8", sparsity=0.75, clusters=32))
    assert list(both) == ["train", "distill", "prune_channels", "prune", "cluster", "quantize", "verify", "export"]
    assert (both["prune"].target_sparsity, both["cluster"].clusters) == (0.75, 32)
    assert both["prune"].epochs == both["cluster"].epochs == 3, "at the trial's epochs"
    dense = stages(Candidate(*base, 1.0, "int8", sparsity=0.0, clusters=0))
    assert list(dense) == ["train", "distill", "quantize", "verify", "export"], "0: no such stage"
    own = stages(Candidate(*base, 1.0, "int8"), epochs=None)
    assert (own["prune"].target_sparsity, own["cluster"].clusters, own["prune"].epochs) == (0.5, 8, 2), "None: the recipe's"
    assert Candidate(*base, 1.0, "int8", sparsity=0.75, clusters=32).label == (
        "minimal mobilenet_v2 a0.5 os32 96x64 sparsity 0.75 clusters 32 int8"
    )
    params = recipe_params(parse_recipe(search_recipe(arch=["lraspp"], alpha=[0.35], sparsity=[0.0, 0.5], clusters=[0, 8])))
    assert (params["sparsity"], params["clusters"]) == (0.5, 8), "the recipe's own prune and cluster stages"
    assert "sparsity" not in recipe_params(parse_recipe(search_recipe(arch=["lraspp"], alpha=[0.35]))), "unsearched: no parameter"


def test_a_sparse_candidate_costs_a_smaller_gzip_before_training_and_the_same_raw_size():
    from edgeseg.files import content_sizes
    from edgeseg.search.candidates import untrained_tflite

    recipe = parse_recipe(search_recipe(sparsity=[0.0, 0.75], clusters=[0, 16]))
    base = ("minimal", "mobilenet_v2", 0.35, 32, (32, 32), 1.0, "int8")
    dense, sparse = (
        content_sizes(untrained_tflite(recipe, Candidate(*base, sparsity=s, clusters=c))[1]) for s, c in ((0.0, 0), (0.75, 16))
    )
    assert sparse["gzip_bytes"] < 0.7 * dense["gzip_bytes"]
    assert sparse["bytes"] == pytest.approx(dense["bytes"], rel=0.01), "int8 kernels are stored dense"


def test_the_recipe_own_model_is_a_point_of_the_space_only_when_the_space_holds_it():
    wide = {"arch": ["minimal", "lraspp"], "alpha": [0.5, 0.35], "channel_keep": [0.5, 1.0]}
    own = recipe_params(parse_recipe(search_recipe(**wide)))
    assert own == {
        "input_size": "32x32",
        "arch": "lraspp",
        "backbone": "mobilenet_v2",
        "alpha": 0.35,
        "output_stride": 16,
        "channel_keep": 1.0,
        "quantize": "int8",
    }, "the student (the recipe distills), at the data's size, unpruned"
    assert candidate_from_params(own) == Candidate("lraspp", "mobilenet_v2", 0.35, 16, (32, 32), 1.0, "int8")
    narrowed = (
        {"arch": ["minimal"]},
        {"alpha": [0.5]},
        {"output_stride": [32]},
        {"channel_keep": [0.5]},
        {"quantize": ["dynamic"]},
    )
    for narrower in narrowed:
        assert recipe_params(parse_recipe(search_recipe(**{**wide, **narrower}))) is None, narrower
    auto = search_recipe(**wide)
    auto["stages"] = [
        {"quantize": {"mode": "auto", "max_miou_drop": 0.01}} if "quantize" in stage else stage for stage in auto["stages"]
    ]
    assert recipe_params(parse_recipe(auto)) == own, "quantize auto starts from int8"


def test_costs_over_the_budget_are_named_with_their_limits():
    budget = BudgetConfig(latency_ms=2.0, latency_vs_recipe=1.0, size_kb=400, macs=1e6)
    costs = {"latency_ms": 2.41, "latency_vs_recipe": 1.2, "bytes": 300 * 1024, "gzip_bytes": 100 * 1024, "macs": 2e6}
    assert budget_violations(costs, budget) == [
        "latency 2.41 ms > 2",
        "latency_vs_recipe 1.20 > 1",
        "MACs 2,000,000.00 > 1e+06",
    ]
    assert budget_violations({**costs, "latency_ms": 1.0, "latency_vs_recipe": 0.9, "macs": 1e5}, budget) == []
    small = BudgetConfig(size_kb=400, gzip_kb=64, peak_memory_kb=2048)
    assert budget_violations({**costs, "memory_kib": 4096.0}, small) == ["gzip 100.00 KiB > 64", "memory 4,096.00 KiB > 2048"]
    assert budget_violations({**costs, "gzip_bytes": 60 * 1024, "memory_kib": 1024.0}, small) == []


def test_a_candidate_whose_input_is_not_a_multiple_of_its_stride_cannot_be_built():
    assert stride_obstacle(Candidate("minimal", "mobilenet_v2", 0.5, 32, (48, 64), 1.0, "int8")) == (
        "input_size [48, 64] is not a multiple of output stride 32"
    )
    assert stride_obstacle(Candidate("minimal", "mobilenet_v2", 0.5, 16, (48, 64), 1.0, "int8")) is None


def test_latencies_are_on_the_reference_scale_whatever_the_load_does_to_absolute_times():
    recipe = parse_recipe(search_recipe())
    own = latency_reference(recipe, BudgetConfig(threads=1))
    assert own.latency_ms > 0 and own.label == "lraspp mobilenet_v2 a0.35 os16 32x32 int8", "the recipe's student"
    # The same file, its reference timing said to be 1000x what it is: as if the machine had since
    # become 1000x faster. Timed with the reference, the file reads on the reference's scale.
    slowed = LatencyReference(own.tflite, own.latency_ms * 1000, own.label)
    latencies, how = latencies_together({"same": own.tflite}, BudgetConfig(threads=1), slowed)
    assert 0.5 < latencies["same"] / slowed.latency_ms < 2
    assert "timed alternately" in how and f"{slowed.latency_ms:.2f} ms" in how


def test_a_budget_measure_command_times_each_file_and_a_bad_one_is_one_line(tmp_path):
    printer = tmp_path / "bench.py"
    printer.write_text("import os, sys\nprint('warming up')\nprint(f'{os.path.getsize(sys.argv[1]) / 1000} ms')\n")
    budget = BudgetConfig(measure_command=f"{sys.executable} {printer} {{model}}")
    reference = LatencyReference(b"", 1.0, "not timed: the command times each file")
    latencies, how = latencies_together({"a": b"x" * 1500, "b": b"x" * 500}, budget, reference)
    assert latencies == {"a": 1.5, "b": 0.5} and how == "the budget's measure command"
    printer.write_text("print('no number here')\n")
    with pytest.raises(EdgesegError) as caught:
        latencies_together({"a": b"x"}, budget, reference)
    message = str(caught.value)
    assert (
        message.startswith(
            "budget.measure_command: expected exit 0 and a number of ms above 0 as the last line. "
            "Received: exit 0, last line 'no number here' from "
        )
        and str(printer) in message
    )
    printer.write_text("print('0 ms')\n")
    with pytest.raises(EdgesegError, match="a number of ms above 0 as the last line. Received: exit 0, last line '0 ms'"):
        latencies_together({"a": b"x"}, budget, reference)
    missing = BudgetConfig(measure_command="no-such-benchmark-tool {model}")
    with pytest.raises(EdgesegError, match=r"^budget.measure_command: cannot run 'no-such-benchmark-tool /"):
        latencies_together({"a": b"x"}, missing, reference)
