"""Every stage meets one contract (`run_stage_test`), then each stage's own promise is checked."""

import json

import numpy as np
import pytest

from edgeseg.recipe import STAGE_CONFIGS
from edgeseg.stages import STAGES
from edgeseg.stages.base import PipelineState, StageOutcome
from edgeseg.stages.compressible import compressible_kernels
from edgeseg.tflite import TFLiteSegmenter
from edgeseg.tflite_metadata import read_metadata
from tests.helpers import weights_equal


def run_stage_test(name: str, state: PipelineState, ctx, **options) -> StageOutcome:
    """Runs stage `name` and checks the contract every stage keeps.

    The input model is not changed, a new state comes back, the record is JSON, and any artifact
    named in the record exists inside the stage folder.
    """
    before = state.model.get_weights()
    outcome = STAGES[name](state, STAGE_CONFIGS[name](**options), ctx)
    assert isinstance(outcome, StageOutcome)
    assert weights_equal(before, state.model.get_weights()), f"{name} changed its input model"
    json.dumps(outcome.record)
    if "artifact" in outcome.record:
        assert (ctx.run_dir / outcome.record["artifact"]).is_file()
        assert (ctx.run_dir / outcome.record["artifact"]).parent == ctx.stage_dir
    return outcome


def no_tfmot_wrappers(model) -> bool:
    return not any(type(layer).__module__.startswith("tensorflow_model_optimization") for layer in model.layers)


def test_train_returns_a_new_trained_model(tiny_model, tiny_context):
    outcome = run_stage_test("train", PipelineState(tiny_model), tiny_context, epochs=1, lr=0.003)
    assert outcome.state.model is not tiny_model
    assert not weights_equal(tiny_model.get_weights(), outcome.state.model.get_weights())
    assert 0 <= outcome.record["val_miou"] <= 1 and len(outcome.record["epochs"]) == 1


def test_distill_makes_the_student_current_and_keeps_the_teacher(tiny_model, tiny_context):
    outcome = run_stage_test("distill", PipelineState(tiny_model), tiny_context, epochs=1)
    assert outcome.state.teacher is tiny_model
    assert outcome.state.model.name.startswith("lraspp")
    assert outcome.state.model is not tiny_model


def test_prune_reaches_its_target_and_strips_wrappers(tiny_model, tiny_context):
    outcome = run_stage_test("prune", PipelineState(tiny_model), tiny_context, target_sparsity=0.6, epochs=1)
    model = outcome.state.model
    assert no_tfmot_wrappers(model)
    kernels = compressible_kernels(model, tiny_context.num_classes)
    assert kernels, "no layer was selected for pruning"
    zeros = sum(np.count_nonzero(k == 0) for k in kernels.values()) / sum(k.size for k in kernels.values())
    assert zeros >= 0.59
    assert outcome.record["sparsity"] == pytest.approx(zeros)


def test_cluster_limits_unique_values_and_strips_wrappers(tiny_model, tiny_context):
    outcome = run_stage_test("cluster", PipelineState(tiny_model), tiny_context, clusters=6, epochs=1)
    model = outcome.state.model
    assert no_tfmot_wrappers(model)
    for name, kernel in compressible_kernels(model, tiny_context.num_classes).items():
        assert np.unique(kernel).size <= 6, name
    assert outcome.record["max_unique_values"] <= 6


def test_quantize_gives_full_int8_taking_raw_pixels(tiny_model, tiny_context):
    outcome = run_stage_test("quantize", PipelineState(tiny_model), tiny_context, calibration_images=8)
    segmenter = TFLiteSegmenter(outcome.state.tflite)
    assert segmenter.input_quantization == (1.0, 0)
    assert segmenter.input["dtype"] == np.uint8 and segmenter.output["dtype"] == np.int8
    assert segmenter.float_ops() == []
    assert outcome.state.model is tiny_model  # the float model stays current for verify


def test_verify_scores_both_models_and_reports_failed_gates(tiny_model, tiny_context):
    quantized = run_stage_test("quantize", PipelineState(tiny_model), tiny_context, calibration_images=8).state
    outcome = run_stage_test("verify", quantized, tiny_context, min_miou=0.99, max_miou_drop=0.5)
    record = outcome.record
    assert record["float"]["images"] == record["int8"]["images"] == len(tiny_context.val)
    assert record["miou_drop"] == pytest.approx(record["float"]["miou"] - record["int8"]["miou"])
    assert len(record["failed_gates"]) == 1 and record["failed_gates"][0].startswith("verify.min_miou")
    assert record["float_tflite"]["miou"] == pytest.approx(record["float"]["miou"], abs=0.02)
    assert 0 <= record["agreement"]["pixel_agreement"] <= 1 and record["agreement"]["max_logit_error"] >= 0
    assert set(record["latency"]) == {"1", "2"} and all(v["median_ms"] > 0 for v in record["latency"].values())
    assert record["op_report"]["float_ops"] == [] and any(op["op"] == "CONV_2D" for op in record["op_report"]["ops"])
    for plot in record["plots"]:
        assert (tiny_context.run_dir / plot).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", plot


def test_export_writes_the_app_contract(tiny_model, tiny_context):
    quantized = run_stage_test("quantize", PipelineState(tiny_model), tiny_context, calibration_images=8).state
    run_stage_test("export", quantized, tiny_context)
    description = json.loads((tiny_context.run_dir / "edgeseg.json").read_text())
    assert (description["input"]["height"], description["input"]["width"]) == (32, 32)
    assert description["input"]["dtype"] == "uint8"
    assert description["input"]["quantization"] == {"scale": 1.0, "zero_point": 0}
    assert description["output"]["dtype"] == "int8" and description["output"]["shape"] == [1, 32, 32, 4]
    assert [c["name"] for c in description["classes"]] == tiny_context.class_names
    assert len({tuple(c["color"]) for c in description["classes"]}) == 4
    labels = (tiny_context.run_dir / "labels.txt").read_text().splitlines()
    assert labels == tiny_context.class_names
    exported = (tiny_context.run_dir / "model.tflite").read_bytes()
    embedded = read_metadata(exported)
    assert embedded["edgeseg.json"] == (tiny_context.run_dir / "edgeseg.json").read_bytes()
    assert embedded["labels.txt"] == (tiny_context.run_dir / "labels.txt").read_bytes()
    images = tiny_context.val.images[:4]
    np.testing.assert_array_equal(TFLiteSegmenter(exported).predict_raw(images[0]), TFLiteSegmenter(quantized.tflite).predict_raw(images[0]))


def test_prune_reaches_its_target_even_in_a_single_step(tiny_model, tiny_context):
    from dataclasses import replace

    one_batch = replace(tiny_context, batch_size=len(tiny_context.train))
    outcome = run_stage_test("prune", PipelineState(tiny_model), one_batch, target_sparsity=0.5, epochs=1)
    assert outcome.record["sparsity"] >= 0.49


def test_training_checkpoints_each_epoch_and_resumes_only_under_its_key(tiny_model, tiny_context):
    import dataclasses

    from edgeseg._keras import keras
    from edgeseg.recipe import TrainConfig
    from edgeseg.training import EpochCheckpoint, ValidationMiou, fit_segmentation

    folder = tiny_context.stage_dir / "checkpoint"
    context = dataclasses.replace(tiny_context, stage_key="key-a")
    validation = ValidationMiou(tiny_model, context, keep_best=True)
    checkpoint = EpochCheckpoint(folder, "key-a", tiny_model, keras.optimizers.Adam(), validation)
    validation.history, validation.best_miou, validation.best_epoch = [{"epoch": 1, "loss": 1.0, "val_miou": 0.1}], 0.1, 1
    validation.best_weights = tiny_model.get_weights()
    checkpoint.on_epoch_end(0)
    progress = json.loads((folder / "progress.json").read_text())
    assert progress["epochs_done"] == 1 and progress["key"] == "key-a" and (folder / "best_weights.npz").is_file()

    resumed_validation = ValidationMiou(tiny_model, context, keep_best=True)
    assert EpochCheckpoint(folder, "key-a", tiny_model, keras.optimizers.Adam(), resumed_validation).restore() == 1
    assert resumed_validation.history == validation.history and weights_equal(resumed_validation.best_weights, validation.best_weights)
    assert EpochCheckpoint(folder, "key-b", tiny_model, keras.optimizers.Adam(), ValidationMiou(tiny_model, context, True)).restore() == 0
    assert not folder.exists(), "a checkpoint made under another key is discarded, not resumed"

    fit = fit_segmentation(tiny_model, tiny_model, TrainConfig(epochs=1), context)
    assert fit["epochs"][0]["epoch"] == 1 and not folder.exists(), "a finished stage leaves no checkpoint"
