"""Quantization-aware training for every zoo model, collaborative QAT that keeps prune and cluster
results, and `mode: auto`'s repairs in order."""

import numpy as np
import pytest

from edgeseg.errors import StageError
from edgeseg.quantization.repair import first_within_budget
from edgeseg.report import quantize_section
from edgeseg.stages.base import PipelineState
from edgeseg.tflite import TFLiteSegmenter
from tests.helpers import run_stage_test, weights_equal


def fails_int8(model):
    """`model` with one kernel that per-channel int8 cannot hold, and float outputs unchanged.

    A BatchNorm shift kills one channel after its ReLU6; the next 1x1 convolution gets a weight
    of 1000 on that always-zero channel. In float it adds nothing; in int8 each output channel's
    scale becomes 1000/127, so every other weight of the layer rounds to zero.
    """
    batchnorm, conv = model.get_layer("block0_dw_bn"), model.get_layer("block0_project_conv")
    gamma, beta, mean, variance = batchnorm.get_weights()
    beta[0] = -100.0
    batchnorm.set_weights([gamma, beta, mean, variance])
    (kernel,) = conv.get_weights()
    kernel[:, :, 0, :] = 1000.0
    conv.set_weights([kernel])
    return model


def test_auto_keeps_the_broken_layer_in_float_after_plain_and_more_calibration_fail(trained_student_path, learnable_context):
    from edgeseg.models.io import load_model

    model = fails_int8(load_model(trained_student_path))
    outcome = run_stage_test(
        "quantize",
        PipelineState(model),
        learnable_context,
        mode="auto",
        max_miou_drop=0.01,
        calibration_images=16,
        float_layers=2,
        output_type="uint8",
    )
    record = outcome.record
    assert [row["attempt"] for row in record["attempts"]] == ["int8", "more_calibration", "float_layers"]
    assert record["attempts"][0]["miou_drop"] > 0.01 and record["attempts"][1]["miou_drop"] > 0.01
    assert record["attempts"][1]["calibration_images"] == 2 * len(learnable_context.train)
    assert "block0_project_conv" in record["float_layers"] and record["mode"] == "int8"
    assert record["attempts"][-1]["miou_drop"] <= 0.01
    assert outcome.state.tflite_mode == "int8" and record["input_quantization"] == [1.0, 0]
    attempts = sorted((learnable_context.stage_dir / "attempts").iterdir())
    assert all(TFLiteSegmenter(path.read_bytes()).output["dtype"] == np.uint8 for path in attempts)
    assert sorted(path.name for path in (learnable_context.stage_dir / "attempts").iterdir()) == [
        "01-int8.tflite",
        "02-more_calibration.tflite",
        "03-float_layers.tflite",
    ]
    table = "\n".join(quantize_section(record))
    assert "**float_layers**" in table and "in float: " in table and "block0_project_conv" in table


def compressed(model, num_classes: int, clustered: bool):
    """`model` with each kernel prune and cluster select by default made half zeros and, when
    `clustered`, three values, as those stages leave them."""
    from edgeseg.layer_selection import select_layers
    from edgeseg.recipe import PruneConfig

    for name in select_layers(model, num_classes, PruneConfig()):
        layer = model.get_layer(name)
        kernel = layer.kernel.numpy()
        kept = np.abs(kernel) > np.median(np.abs(kernel))
        if clustered:
            kernel = np.where(kernel > 0, kernel[kept & (kernel > 0)].mean(), kernel[kept & (kernel < 0)].mean())
        layer.kernel.assign(np.where(kept, kernel, 0.0).astype(np.float32))
    return model


# LR-ASPP, every recipe's head, in .ci/run's `ci` tier (88 s); DeepLabV3+ with `-m slow`, beside the
# zoo matrix's slow entries, which convert every architecture by QAT.
@pytest.mark.parametrize(
    "arch", [pytest.param("lraspp", marks=pytest.mark.ci), pytest.param("deeplabv3plus", marks=pytest.mark.slow)]
)
def test_quantization_aware_training_gives_a_full_int8_file_that_matches_the_qat_model(arch, tiny_context):
    from edgeseg.models.zoo import build_model
    from edgeseg.quantization.aware import quantize_aware
    from edgeseg.quantization.converters import EXACT_PIXEL_INPUT, calibration_images, convert_int8
    from edgeseg.recipe import ModelSpec
    from edgeseg.segmenter import KerasSegmenter

    model = build_model(ModelSpec(arch=arch, alpha=0.35), (32, 32), 4)
    before = model.get_weights()
    qat_model = quantize_aware(model)
    assert weights_equal(before, model.get_weights())
    images, labels = tiny_context.train.images[:16], tiny_context.train.labels[:16]
    qat_model.compile("adam", "sparse_categorical_crossentropy")
    qat_model.fit(images.astype(np.float32), np.minimum(labels, 3), batch_size=8, epochs=1, verbose=0)  # ranges, BN

    segmenter = TFLiteSegmenter(convert_int8(qat_model, calibration_images(images, 8, seed=0)))
    assert segmenter.input_quantization == EXACT_PIXEL_INPUT and segmenter.float_ops() == []
    expected = KerasSegmenter(qat_model).predict_logits(tiny_context.val.images)
    received = segmenter.predict_logits(tiny_context.val.images)
    output_scale = segmenter.output["quantization"][0]
    assert np.mean(np.abs(expected - received)) <= 2 * output_scale
    assert np.mean(expected.argmax(-1) == received.argmax(-1)) >= 0.95


def quantized_with_qat(model, context, scheme: str) -> dict:
    """The quantize stage's record for `model` after one QAT epoch, checked to keep the zeros,
    the values per channel and a full-int8 file."""
    outcome = run_stage_test(
        "quantize", PipelineState(model), context, calibration_images=8, qat={"epochs": 1, "tensorboard": False}
    )
    record = outcome.record
    assert record["qat"]["scheme"] == scheme and len(record["qat"]["epochs"]) == 1
    assert record["kernels"]["lost"] == [] and record["float_ops"] == []
    assert record["kernels"]["sparsity_of_pruned_layers"] >= 0.5
    return record


@pytest.mark.ci  # 75 s in CI: TF-MOT pruning, then QAT
def test_qat_after_prune_keeps_the_zeros_into_the_file(tiny_model, tiny_context):
    quantized_with_qat(compressed(tiny_model, tiny_context.num_classes, clustered=False), tiny_context, "pqat")


@pytest.mark.slow  # about 7 minutes: TF-MOT traces per-channel clustering ops for every convolution
def test_qat_after_prune_and_cluster_keeps_zeros_and_clusters_into_the_file(tiny_model, tiny_context):
    record = quantized_with_qat(compressed(tiny_model, tiny_context.num_classes, clustered=True), tiny_context, "pcqat")
    assert record["kernels"]["max_unique_per_channel_of_clustered_layers"] <= 3


def test_the_qat_scheme_follows_what_the_kernels_hold(tiny_model):
    from edgeseg.kernels import compression_of
    from edgeseg.quantization.aware import collaborative_scheme

    assert collaborative_scheme(*compression_of(tiny_model)) == "default"
    assert collaborative_scheme(*compression_of(compressed(tiny_model, 4, clustered=False))) == "pqat"
    assert collaborative_scheme(*compression_of(compressed(tiny_model, 4, clustered=True))) == "pcqat"


def test_auto_runs_its_steps_in_order_and_stops_at_the_first_within_budget():
    ran, saved = [], []

    def step(name, drop=None, skipped=None):
        def make():
            ran.append(name)
            return {"skipped": skipped} if skipped else {"tflite": name.encode(), "mode": "int8", "drop": drop}

        return name, make

    steps = [
        step("int8", 0.05),
        step("more_calibration", skipped="no more images"),
        step("float_layers", 0.002),
        step("int16x8", 0.0),
    ]
    chosen = first_within_budget(
        steps,
        drop_of=lambda tflite: {"int8": 0.05, "float_layers": 0.002}[tflite.decode()],
        budget=0.003,
        save=lambda name, tflite: saved.append(name),
    )
    assert ran == ["int8", "more_calibration", "float_layers"] and saved == ["int8", "float_layers"]
    assert chosen["attempt"] == "float_layers" and chosen["tflite"] == b"float_layers"
    assert [row.get("miou_drop") for row in chosen["attempts"]] == [0.05, None, 0.002]
    assert chosen["attempts"][1]["skipped"] == "no more images"

    with pytest.raises(
        StageError,
        match=r"no attempt within max_miou_drop 0.001: int8 drop 0.050000; more_calibration "
        r"skipped \(no more images\); float_layers drop 0.002000; int16x8 drop 0.010000",
    ):
        first_within_budget(
            steps, drop_of=lambda tflite: {"int8": 0.05, "float_layers": 0.002, "int16x8": 0.01}[tflite.decode()], budget=0.001
        )


@pytest.mark.parametrize("mode", ["int8", "float32"])
def test_the_converter_writes_the_file_tensorflows_keras_converter_writes(mode, monkeypatch):
    """`keras_converter` skips the Keras SavedModel that `from_keras_model` writes first; only the
    source kind in the file's conversion metadata (a Keras model, or a function) may differ."""
    from edgeseg._keras import keras, tf
    from edgeseg.quantization import converters

    image = keras.Input((16, 16, 3), name="image")
    features = keras.layers.ReLU(6.0)(keras.layers.BatchNormalization()(keras.layers.Conv2D(8, 3, padding="same")(image)))
    model = keras.Model(image, keras.layers.Conv2D(4, 1, name="logits")(features))
    images = np.random.default_rng(0).integers(0, 256, (4, 16, 16, 3), dtype=np.uint8)

    def converted() -> bytes:
        return converters.convert_int8(model, images) if mode == "int8" else converters.convert_float(model)

    received = converted()
    monkeypatch.setattr(converters, "keras_converter", tf.lite.TFLiteConverter.from_keras_model)
    expected = converted()
    assert len(received) == len(expected)
    assert sum(a != b for a, b in zip(received, expected)) <= 1
    signature = {"serving_default": {"inputs": ["image"], "outputs": ["logits"]}}
    assert TFLiteSegmenter(received).interpreter.get_signature_list() == signature
