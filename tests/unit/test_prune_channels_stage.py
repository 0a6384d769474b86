"""The `prune_channels` stage: a smaller model by MACs, parameters or latency, fine-tuned (with the
teacher when asked), resumable round by round, and a model the other stages take like any other."""

import json

import numpy as np
import pytest

from edgeseg.profile import profile_model
from edgeseg.stages.base import PipelineState
from tests.helpers import run_stage_test


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
    """Latency measured by converting and timing each candidate; here a stand-in timer, so the
    bisection's choice is known: a ratio of MACs ** 0.5 within 0.6 means at most 0.36 of the MACs."""
    from edgeseg.stages import prune_channels

    measured = []

    def macs_timer(reference, candidate, threads, rounds=10):
        from edgeseg.tflite import TFLiteSegmenter

        sizes = [len(TFLiteSegmenter(content).content) for content in (reference, candidate)]
        measured.append(sizes[1] / sizes[0])
        return measured[-1] ** 0.5

    monkeypatch.setattr(prune_channels, "latency_ratio", macs_timer)
    outcome = run_stage_test("prune_channels", PipelineState(tiny_model), tiny_context, target="latency", keep=0.6, epochs=1)
    assert 0 < outcome.record["kept_macs_fraction"] < 0.6 and len(measured) >= 3
    assert (
        profile_model(outcome.state.model)["macs"]
        <= outcome.record["kept_macs_fraction"] * profile_model(tiny_model)["macs"] * 1.001
    )


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
