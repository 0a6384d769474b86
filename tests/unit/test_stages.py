"""Every stage meets one contract (`run_stage_test`), then each stage's own promise is checked."""

import json
import logging

import numpy as np
import pytest

from edgeseg._keras import keras
from edgeseg.kernels import kernels_of
from edgeseg.layer_selection import select_layers
from edgeseg.recipe import PruneConfig
from edgeseg.stages.base import PipelineState
from edgeseg.tflite import TFLiteSegmenter
from edgeseg.tflite_metadata import read_metadata
from tests.helpers import run_stage_test, weights_equal


def default_kernels(model, num_classes: int) -> dict:
    """Kernels of the layers prune and cluster select by default."""
    return kernels_of(model, select_layers(model, num_classes, PruneConfig()))


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
    kernels = default_kernels(model, tiny_context.num_classes)
    assert kernels, "no layer was selected for pruning"
    zeros = sum(np.count_nonzero(k == 0) for k in kernels.values()) / sum(k.size for k in kernels.values())
    assert zeros >= 0.59
    assert outcome.record["sparsity"] == pytest.approx(zeros)
    assert outcome.record["fine_tune_loss"] == "cross-entropy"


def test_cluster_limits_unique_values_and_strips_wrappers(tiny_model, tiny_context):
    outcome = run_stage_test("cluster", PipelineState(tiny_model), tiny_context, clusters=6, epochs=1)
    model = outcome.state.model
    assert no_tfmot_wrappers(model)
    for name, kernel in default_kernels(model, tiny_context.num_classes).items():
        assert np.unique(kernel).size <= 6, name
    assert outcome.record["max_unique_values"] <= 6


def test_quantize_gives_full_int8_taking_raw_pixels(tiny_model, tiny_context):
    outcome = run_stage_test("quantize", PipelineState(tiny_model), tiny_context, calibration_images=8)
    segmenter = TFLiteSegmenter(outcome.state.tflite)
    assert segmenter.input_quantization == (1.0, 0)
    assert segmenter.input["dtype"] == np.uint8 and segmenter.output["dtype"] == np.int8
    assert segmenter.float_ops() == []
    assert outcome.state.model is tiny_model  # the float model stays current for verify


def test_quantize_uint8_output_holds_the_int8_outputs_values_shifted_by_128(tiny_model, tiny_context):
    signed = TFLiteSegmenter(
        run_stage_test("quantize", PipelineState(tiny_model), tiny_context, calibration_images=8).state.tflite
    )
    unsigned = TFLiteSegmenter(
        run_stage_test(
            "quantize", PipelineState(tiny_model), tiny_context, calibration_images=8, output_type="uint8"
        ).state.tflite
    )
    assert unsigned.output["dtype"] == np.uint8 and unsigned.input_quantization == (1.0, 0)
    assert unsigned.output["quantization"][0] == signed.output["quantization"][0]
    assert unsigned.output["quantization"][1] == signed.output["quantization"][1] + 128
    images = tiny_context.val.images[:2]
    assert np.array_equal(unsigned.predict_logits(images), signed.predict_logits(images))


def test_verify_scores_both_models_and_reports_failed_gates(tiny_model, tiny_context):
    quantized = run_stage_test("quantize", PipelineState(tiny_model), tiny_context, calibration_images=8).state
    outcome = run_stage_test("verify", quantized, tiny_context, min_miou=0.99, max_miou_drop=0.5)
    record = outcome.record
    assert record["float"]["images"] == record["quantized"]["images"] == len(tiny_context.val)
    assert record["miou_drop"] == pytest.approx(record["float"]["miou"] - record["quantized"]["miou"])
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
    np.testing.assert_array_equal(
        TFLiteSegmenter(exported).predict_raw(images[0]), TFLiteSegmenter(quantized.tflite).predict_raw(images[0])
    )


@pytest.mark.slow  # a second prune run (57 s) for the one-step schedule of `pruning_schedule`
def test_prune_reaches_its_target_even_in_a_single_step(tiny_model, tiny_context):
    from dataclasses import replace

    one_batch = replace(tiny_context, batch_size=len(tiny_context.train))
    outcome = run_stage_test("prune", PipelineState(tiny_model), one_batch, target_sparsity=0.5, epochs=1)
    assert outcome.record["sparsity"] >= 0.49


def test_training_checkpoints_each_epoch_and_resumes_only_under_its_key(tiny_model, tiny_context):
    import dataclasses

    from edgeseg.recipe import TrainConfig
    from edgeseg.training import EpochCheckpoint, ValidationMiou, fit_segmentation

    folder = tiny_context.stage_dir / "checkpoint"
    context = dataclasses.replace(tiny_context, stage_key="key-a")

    def checkpoint(key="key-a"):
        validation = ValidationMiou(tiny_model, context, keep_best=True)
        return EpochCheckpoint(folder, key, tiny_model, keras.optimizers.Adam(), validation), validation

    saving, validation = checkpoint()
    validation.history, validation.best_miou, validation.best_epoch = [{"epoch": 1, "loss": 1.0, "val_miou": 0.1}], 0.1, 1
    validation.best_weights = saved_weights = tiny_model.get_weights()
    saving.on_epoch_end(0)
    progress = json.loads((folder / "progress.json").read_text())
    assert progress["epochs_done"] == 1 and progress["key"] == "key-a" and (folder / progress["best_weights"]).is_file()

    tiny_model.set_weights([w + 1.0 for w in saved_weights])
    restoring, restored = checkpoint()
    assert restoring.restore() == 1
    assert weights_equal(tiny_model.get_weights(), saved_weights), "the checkpoint's weights come back"
    assert restored.history == validation.history and weights_equal(restored.best_weights, saved_weights)

    (folder / progress["best_weights"]).unlink()
    assert checkpoint()[0].restore() == 0 and not folder.exists(), "an incomplete checkpoint is discarded"
    saving.on_epoch_end(0)
    assert checkpoint("key-b")[0].restore() == 0 and not folder.exists(), "another key's checkpoint is discarded"

    fit = fit_segmentation(tiny_model, tiny_model, TrainConfig(epochs=1), context)
    assert fit["epochs"][0]["epoch"] == 1 and not folder.exists(), "a finished stage leaves no checkpoint"


def test_prune_m_by_n_leaves_m_zeros_in_every_group_of_n(tiny_model, tiny_context):
    outcome = run_stage_test("prune", PipelineState(tiny_model), tiny_context, m_by_n=[2, 4], epochs=1)
    kernels = default_kernels(outcome.state.model, tiny_context.num_classes)
    for name, kernel in kernels.items():
        # TFLite lays a Conv2D kernel out as [out, h, w, in]; groups of 4 run along `in`.
        groups = np.transpose(kernel, (3, 0, 1, 2)).reshape(-1, 4)
        assert (np.count_nonzero(groups == 0, axis=1) >= 2).all(), name
    assert outcome.record["m_by_n"] == (2, 4) and outcome.record["target_sparsity"] == 0.5


def test_prune_layer_patterns_choose_what_is_pruned(tiny_model, tiny_context):
    outcome = run_stage_test(
        "prune",
        PipelineState(tiny_model),
        tiny_context,
        target_sparsity=0.5,
        epochs=1,
        sparsity_schedule="constant",
        layers=["project_conv"],
        skip_layers=["block1_"],
    )
    by_layer = outcome.record["layer_sparsity"]
    assert by_layer and all("project_conv" in name and "block1_" not in name for name in by_layer)
    assert all(value >= 0.49 for value in by_layer.values())
    untouched = outcome.state.model.get_layer("block1_expand_conv").kernel.numpy()
    assert np.mean(untouched == 0) < 0.01


def test_prune_skips_depthwise_kernels_with_a_reason_and_says_when_nothing_is_left(tiny_model, tiny_context, caplog):
    from edgeseg.errors import StageError

    # TF-MOT would wrap a DepthwiseConv2D and train without pruning it (its registry lists no weight).
    edgeseg_log = logging.getLogger("edgeseg")
    edgeseg_log.addHandler(caplog.handler)  # the CLI, run in this process by other tests, stops propagation
    try:
        with caplog.at_level("INFO", logger="edgeseg"), pytest.raises(StageError, match="no layer selected"):
            run_stage_test("prune", PipelineState(tiny_model), tiny_context, layers=["DepthwiseConv2D"])
    finally:
        edgeseg_log.removeHandler(caplog.handler)
    assert (
        "prune: skipping block1_dw (DepthwiseConv2D): edgeseg compresses Conv2D and Dense kernels only "
        "(TF-MOT lists no weight of DepthwiseConv2D)" in caplog.text
    )


def biased_conv_model():
    """Four Conv2D layers with biases, 32 px in, 4 class logits out: what per-channel clustering needs."""

    keras.utils.set_random_seed(0)
    images = keras.Input((32, 32, 3))
    x = keras.layers.Conv2D(16, 3, padding="same", activation="relu", name="stem")(images)
    x = keras.layers.Conv2D(32, 3, padding="same", activation="relu", name="middle")(x)
    x = keras.layers.Conv2D(32, 1, activation="relu", name="mixer")(x)
    return keras.Model(images, keras.layers.Conv2D(4, 1, name="logits")(x))


def test_cluster_per_channel_limits_each_output_channel(tiny_context):
    model = biased_conv_model()
    outcome = run_stage_test(
        "cluster",
        PipelineState(model),
        tiny_context,
        clusters=4,
        epochs=1,
        per_channel=True,
        init="linear",
        layers=["middle", "mixer"],
    )
    kernels = kernels_of(outcome.state.model, ["middle", "mixer"])
    per_channel = [np.unique(kernel[..., c]).size for kernel in kernels.values() for c in range(kernel.shape[-1])]
    assert max(per_channel) <= 4
    assert min(np.unique(kernel).size for kernel in kernels.values()) > 4, "channels have clusters of their own"
    assert outcome.record["per_channel_layers"] == 2 and outcome.record["init"] == "linear"


@pytest.mark.slow  # 109 s: per-channel clustering of every biased layer; per channel itself is checked above
def test_cluster_per_channel_on_bias_less_convolutions_clusters_per_kernel(tiny_model, tiny_context):
    selected = select_layers(tiny_model, tiny_context.num_classes, PruneConfig())
    biased = [name for name in selected if tiny_model.get_layer(name).use_bias]
    outcome = run_stage_test("cluster", PipelineState(tiny_model), tiny_context, clusters=4, epochs=1, per_channel=True)
    assert outcome.record["per_channel_layers"] == len(biased) < len(selected)
    assert outcome.record["max_unique_values"] <= 4


def test_quantize_flags_kernels_that_lost_zeros_or_gained_values(tiny_model):
    from edgeseg.kernels import compression_kept

    layer = tiny_model.get_layer("block1_project_conv")
    kernel = layer.kernel.numpy()
    kernel[kernel < np.median(kernel)] = 0
    layer.kernel.assign(kernel)
    zeros = float(np.mean(kernel == 0))
    kept = compression_kept(tiny_model, {"block1_project_conv": {"sparsity": zeros, "max_unique_per_channel": 3}})
    assert kept["lost"] == [] and kept["sparsity_of_pruned_layers"] == pytest.approx(zeros)
    lost = compression_kept(tiny_model, {"block1_project_conv": {"sparsity": zeros - 0.1, "max_unique_per_channel": 3}})
    assert len(lost["lost"]) == 1 and lost["lost"][0].startswith("block1_project_conv: zeros")
    gained = compression_kept(tiny_model, {"block1_project_conv": {"sparsity": zeros, "max_unique_per_channel": 10_000}})
    assert len(gained["lost"]) == 1 and "values per channel" in gained["lost"][0]


def test_kernels_zeroed_in_the_file_leave_every_other_byte_as_written(tiny_export):
    from edgeseg.errors import ModelError
    from edgeseg.files import content_sizes
    from edgeseg.models.io import load_model
    from edgeseg.tflite import TFLiteSegmenter

    model = load_model(tiny_export / "01-train" / "model.keras")
    segmenter = TFLiteSegmenter(tiny_export / "model.tflite")
    before = segmenter.kernel_stats()
    chosen = ["block1_project_conv", "block2_expand_conv"]
    zeroed = segmenter.with_kernels_zeroed(chosen)
    assert len(zeroed) == len(segmenter.content)
    changed = np.count_nonzero(np.frombuffer(zeroed, np.uint8) != np.frombuffer(segmenter.content, np.uint8))
    assert 0 < changed <= sum(kernel.size for kernel in kernels_of(model, chosen).values())
    after = TFLiteSegmenter(zeroed).kernel_stats()
    assert all(after[name]["sparsity"] == 1.0 for name in chosen)
    assert {name: stats for name, stats in after.items() if name not in chosen} == {
        name: stats for name, stats in before.items() if name not in chosen
    }
    assert content_sizes(zeroed)["gzip_bytes"] < content_sizes(segmenter.content)["gzip_bytes"]
    assert segmenter.with_kernels_zeroed([]) == segmenter.content
    assert all(stats["sparsity"] == 1.0 for stats in TFLiteSegmenter(segmenter.with_kernels_zeroed()).kernel_stats().values())
    with pytest.raises(ModelError, match="no convolution or fully connected op has the kernel of nowhere"):
        segmenter.with_kernels_zeroed(["nowhere"])


@pytest.mark.parametrize("mode", ["int16x8", "float16", pytest.param("dynamic", marks=pytest.mark.slow)])
def test_every_quantize_mode_converts_and_runs(tiny_export, tiny_context, mode):
    from edgeseg.models.io import load_model
    from edgeseg.segmenter import KerasSegmenter

    # int16x8 needs trained weights: on random ones the interpreter refuses a depthwise layer.
    model = load_model(tiny_export / "01-train" / "model.keras")
    outcome = run_stage_test("quantize", PipelineState(model), tiny_context, mode=mode, calibration_images=8)
    segmenter = TFLiteSegmenter(outcome.state.tflite)
    assert outcome.record["mode"] == mode and segmenter.input["dtype"] == np.float32
    images = tiny_context.val.images
    agreeing = np.mean(segmenter.predict_labels(images) == KerasSegmenter(model).predict_labels(images))
    assert agreeing >= 0.95, f"{mode} .tflite agrees with the float model on {agreeing:.1%} of pixels"
    assert outcome.record["kernels"]["lost"] == []


def test_verify_debugs_quantization_layer_by_layer(tiny_export, tiny_context):
    from edgeseg.models.io import load_model
    from edgeseg.report import debug_section

    model = load_model(tiny_export / "01-train" / "model.keras")
    tflite = (tiny_export / "02-quantize" / "model.tflite").read_bytes()
    outcome = run_stage_test(
        "verify", PipelineState(model, tflite=tflite, tflite_mode="int8"), tiny_context, debug_layers=2, gallery_images=0
    )
    debug = outcome.record["quantization_debug"]
    errors = [row["rmse_over_scale"] for row in debug["layers"]]
    assert len(errors) == 2 and errors == sorted(errors, reverse=True) and errors[0] > 0
    for row in debug["layers"]:
        assert 0 <= row["miou_with_layer_in_float"] <= 1
        assert row["miou_gain"] == pytest.approx(row["miou_with_layer_in_float"] - debug["int8_miou"])
    assert any(row["layer"] in line for row in debug["layers"] for line in debug_section(debug))
