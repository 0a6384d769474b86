"""The `prune_channels` stage: a smaller model by MACs, parameters or latency, fine-tuned (with the
teacher when asked), resumable round by round, and a model the other stages take like any other."""

import json

import numpy as np
import pytest

from edgeseg.profile import profile_model
from edgeseg.stages.base import PipelineState
from tests.helpers import run_stage_test

# How far below a latency target the pruned model may land: the bisection's six probes and round_to 8
# on a tiny model leave steps of a few hundredths.
LATENCY_TOLERANCE = 0.1


@pytest.mark.ci  # 71 s in CI: two rounds of removal and fine-tune
def test_two_rounds_reach_the_macs_target_and_record_before_and_after(tiny_model, tiny_context):
    outcome = run_stage_test("prune_channels", PipelineState(tiny_model), tiny_context, keep=0.5, steps=2, epochs=2)
    model, record = outcome.state.model, outcome.record
    assert profile_model(model)["macs"] <= 0.5 * profile_model(tiny_model)["macs"]
    assert (
        record["after"]["macs"] == profile_model(model)["macs"] and record["before"]["macs"] == profile_model(tiny_model)["macs"]
    )
    assert record["after"]["bytes"] < record["before"]["bytes"], "the int8 file is really smaller"
    assert set(record["after"]["latency_ms"]) == {"1", "2"}
    assert [step["step"] for step in record["steps"]] == [1, 2] and len(record["epochs"]) == 1, "the last round's fit"
    narrower = [row for row in record["widths"] if row["after"] < row["before"]]
    assert narrower and all(row["after"] % 8 == 0 for row in narrower)
    assert record["fine_tune_loss"] == "cross-entropy"
    assert model.output_shape == tiny_model.output_shape


@pytest.mark.slow  # two stage runs; resuming rounds shares the stage's one code path
def test_a_completed_round_is_reused_when_the_stage_reruns(tiny_model, tiny_context):
    import dataclasses

    context = dataclasses.replace(tiny_context, stage_key="key")
    first = run_stage_test("prune_channels", PipelineState(tiny_model), context, keep=0.6, steps=2, epochs=2)
    (tiny_context.stage_dir / "step-2" / "record.json").unlink()  # as if killed during round 2
    again = run_stage_test("prune_channels", PipelineState(tiny_model), context, keep=0.6, steps=2, epochs=2)
    assert again.record["steps"][0] == first.record["steps"][0]
    np.testing.assert_array_equal(again.state.model.get_weights()[5], first.state.model.get_weights()[5])


@pytest.mark.slow  # converts every probe (596 s in the 2026-11-30 CI run); the macs target stays in the default suite
def test_the_latency_target_bisects_the_macs_fraction_on_measured_files(tiny_model, tiny_context, monkeypatch):
    """Latency measured by converting and timing each candidate; here a stand-in timer, the square
    root of the file-size ratio, so the bisection's choice is known. The probes, not the fine-tuned
    model, are timed: trained kernels share fewer constants than a tiny untrained model's, so its
    file grows with training while its MACs do not."""
    from edgeseg.stages import prune_channels

    timed = []

    def size_timer(reference, candidate, threads=2, rounds=10):
        from edgeseg.tflite import TFLiteSegmenter

        sizes = [len(TFLiteSegmenter(content).content) for content in (reference, candidate)]
        timed.append((sizes[1] / sizes[0]) ** 0.5)
        return timed[-1]

    monkeypatch.setattr(prune_channels, "latency_ratio", size_timer)
    outcome = run_stage_test("prune_channels", PipelineState(tiny_model), tiny_context, target="latency", keep=0.6, epochs=1)
    assert 0 < outcome.record["kept_macs_fraction"] < 0.6 and len(timed) >= 3
    assert "latency_target_missed" in outcome.record, "the final timing is judged against the target"
    assert (
        profile_model(outcome.state.model)["macs"]
        <= outcome.record["kept_macs_fraction"] * profile_model(tiny_model)["macs"] * 1.001
    )
    within = [ratio for ratio in timed if ratio <= 0.6]
    assert max(within) >= 0.6 - LATENCY_TOLERANCE, f"the bisection got within tolerance of the target: {timed}"


@pytest.mark.ci  # 42 s beside a CamVid training: six probes converted
def test_the_latency_probes_are_planned_on_the_stage_importance(tiny_model, tiny_context, monkeypatch):
    """So the first round removes the channels the probes timed: Taylor's widths are not l1's."""
    from edgeseg.channel_pruning.groups import find_groups
    from edgeseg.quantization.converters import calibration_images
    from edgeseg.recipe.stages import PruneChannelsConfig
    from edgeseg.stages import prune_channels

    criteria = []
    scores = prune_channels.channel_importance

    def recorded(model, groups, criterion, *args):
        criteria.append(criterion)
        return scores(model, groups, criterion, *args)

    monkeypatch.setattr(prune_channels, "channel_importance", recorded)
    monkeypatch.setattr(prune_channels, "latency_ratio", lambda reference, candidate, threads: len(candidate) / len(reference))
    cfg = PruneChannelsConfig(target="latency", keep=0.6, importance="taylor", taylor_batches=1)
    calibration = calibration_images(tiny_context.train.images, 4, 0)
    fraction = prune_channels._macs_for_latency(tiny_model, find_groups(tiny_model), cfg, tiny_context, calibration)
    assert criteria == ["taylor"] and 0 < fraction < 1


def test_a_resumed_latency_target_keeps_the_plan_of_the_interrupted_run(tiny_context, monkeypatch):
    """Timings differ from run to run, so bisecting again would plan another model than the rounds
    already completed; a changed stage (another key), or a call outside a run (no key), plans anew."""
    import dataclasses

    from edgeseg.recipe.stages import PruneChannelsConfig
    from edgeseg.stages import prune_channels

    bisections = []

    def bisect(model, groups, cfg, ctx, calibration):
        bisections.append(cfg.keep)
        return [0.4, 0.5, 0.6, 0.7][len(bisections) - 1]  # another answer each time, as timings give

    monkeypatch.setattr(prune_channels, "_macs_for_latency", bisect)
    cfg = PruneChannelsConfig(target="latency", keep=0.6)
    context = dataclasses.replace(tiny_context, stage_key="key")
    first = prune_channels._planned_macs_fraction(None, [], cfg, context, None)
    assert prune_channels._planned_macs_fraction(None, [], cfg, context, None) == first == 0.4
    assert len(bisections) == 1
    changed = dataclasses.replace(tiny_context, stage_key="another key")
    assert prune_channels._planned_macs_fraction(None, [], cfg, changed, None) == 0.5
    bare = dataclasses.replace(tiny_context, stage_key="", stage_dir=tiny_context.stage_dir / "bare")
    assert prune_channels._planned_macs_fraction(None, [], cfg, bare, None) == 0.6, "a call outside a run plans anew"
    assert prune_channels._planned_macs_fraction(None, [], cfg, bare, None) == 0.7
    assert not bare.stage_dir.exists(), "and keeps nothing"


@pytest.mark.slow  # the guided fine-tune is distillation's, tested in test_distillation
def test_without_a_distill_stage_the_fine_tune_learns_from_the_unpruned_model(tiny_model, tiny_context):
    outcome = run_stage_test(
        "prune_channels", PipelineState(tiny_model), tiny_context, keep=0.6, epochs=1, distill={"kd_loss": "kl"}
    )
    assert outcome.record["fine_tune_loss"] == "cross-entropy + kl on the unpruned model's logits"
    assert outcome.state.teacher is None, "the unpruned model taught, but did not become the run's teacher"


def test_an_unreachable_target_is_one_line_naming_the_key(tiny_model, tiny_context):
    from edgeseg.errors import StageError

    with pytest.raises(StageError, match=r"^prune_channels\.keep: .*Received: keep=0\.01$"):
        run_stage_test("prune_channels", PipelineState(tiny_model), tiny_context, keep=0.01, epochs=1, min_channels=64)


@pytest.mark.slow  # three stages in a row
def test_the_pruned_model_goes_through_tf_mot_pruning_and_quantization_aware_training(tiny_model, tiny_context):
    pruned = run_stage_test("prune_channels", PipelineState(tiny_model), tiny_context, keep=0.6, epochs=1).state.model
    sparse = run_stage_test("prune", PipelineState(pruned), tiny_context, target_sparsity=0.5, epochs=1)
    assert sparse.record["sparsity"] >= 0.49
    quantized = run_stage_test("quantize", sparse.state, tiny_context, calibration_images=8, qat={"epochs": 1})
    assert quantized.record["kernels"]["lost"] == [] and json.dumps(quantized.record)


@pytest.mark.slow  # a removal, a clustering and two conversions
@pytest.mark.parametrize("mode", ["float16", "dynamic"])
def test_the_pruned_model_goes_through_clustering_and_the_other_quantize_modes(tiny_model, tiny_context, mode):
    from edgeseg.tflite import TFLiteSegmenter

    pruned = run_stage_test("prune_channels", PipelineState(tiny_model), tiny_context, keep=0.6, epochs=1).state.model
    clustered = run_stage_test("cluster", PipelineState(pruned), tiny_context, clusters=8, epochs=1)
    assert clustered.record["max_unique_values"] <= 8
    quantized = run_stage_test("quantize", clustered.state, tiny_context, mode=mode)
    assert quantized.state.tflite_mode == mode
    segmenter = TFLiteSegmenter(quantized.state.quantized())
    assert segmenter.input_size == tuple(tiny_model.input_shape[1:3])


def test_the_report_gives_the_before_and_after_table_and_only_the_narrowed_widths():
    from edgeseg.report import channel_pruning_section

    def costs(macs, params, size, latency):
        return {
            "macs": macs,
            "params": params,
            "bytes": size,
            "gzip_bytes": size // 2,
            "latency_ms": {"1": latency, "2": latency / 2},
        }

    record = {
        "target": "latency",
        "keep": 0.6,
        "allocation": "global",
        "importance": "l1",
        "steps": [{"step": 1}],
        "fine_tune_loss": "cross-entropy",
        "before": costs(100e6, 200_000, 400 * 1024, 4.0),
        "after": costs(50e6, 80_000, 200 * 1024, 3.0),
        "widths": [{"layer": "stem", "before": 16, "after": 8}, {"layer": "logits", "before": 11, "after": 11}],
    }
    lines = channel_pruning_section(record)
    assert "| before | 100.0 M | 200,000 | 400.0 KiB | 200.0 KiB | 4.00 ms | 2.00 ms |" in lines
    assert "| after / before | 0.50 | 0.40 | 0.50 | 0.50 | 0.75 | 0.75 |" in lines
    assert "Widths of the 1 layers narrowed (of 2):" in lines
    assert "| stem | 16 | 8 |" in lines and not any(line.startswith("| logits") for line in lines)
    assert not any("missed" in line for line in lines)
    missed = channel_pruning_section({**record, "latency_target_missed": "runs in 0.87 of the latency, above keep 0.6"})
    assert "**Latency target missed:** runs in 0.87 of the latency, above keep 0.6." in missed
    assert missed.index("**Latency target missed:** runs in 0.87 of the latency, above keep 0.6.") < missed.index(
        "| before | 100.0 M | 200,000 | 400.0 KiB | 200.0 KiB | 4.00 ms | 2.00 ms |"
    ), "above the table it qualifies"


@pytest.mark.ci  # converts and times every probe by a command: about a minute
def test_a_latency_target_is_timed_by_the_measure_command_when_given(tiny_model, tiny_context, tmp_path, monkeypatch):
    """A stand-in device: the command prints the file's size in KB as its latency in ms."""
    import sys

    from edgeseg.report import channel_pruning_section
    from edgeseg.stages import prune_channels

    monkeypatch.setattr(prune_channels, "latency_ratio", lambda *args, **kwargs: pytest.fail("timed here, not by the command"))
    device = tmp_path / "device.py"
    device.write_text("import os, sys\nprint(f'{os.path.getsize(sys.argv[1]) / 1000} ms')\n")
    outcome = run_stage_test(
        "prune_channels",
        PipelineState(tiny_model),
        tiny_context,
        target="latency",
        keep=0.6,
        epochs=1,
        measure_command=f"{sys.executable} {device} {{model}}",
    )
    record = outcome.record
    assert 0 < record["kept_macs_fraction"] < 0.6
    on_device = record["device_latency_ms"]
    assert on_device["before"] == pytest.approx(record["before"]["bytes"] / 1000, rel=0.01)
    assert on_device["after"] < on_device["before"]
    missed = record["latency_target_missed"]
    assert missed is None or "on the device (measure_command)" in missed
    assert any(line.startswith("On the device (`measure_command`): ") for line in channel_pruning_section(record))
