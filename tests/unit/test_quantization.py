"""Quantization-aware training for every zoo model, collaborative QAT that keeps prune and cluster
results, and `mode: auto`'s repairs in order."""

import numpy as np
import pytest

from edgeseg.errors import StageError
from edgeseg.quantization_repair import first_within_budget
from edgeseg.stages.base import PipelineState
from tests.helpers import weights_equal
from tests.unit.test_stages import run_stage_test


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
    outcome = run_stage_test("quantize", PipelineState(model), learnable_context, mode="auto", max_miou_drop=0.01,
                             calibration_images=16, float_layers=2)
    record = outcome.record
    assert [row["attempt"] for row in record["attempts"]] == ["int8", "more_calibration", "float_layers"]
    assert record["attempts"][0]["miou_drop"] > 0.01 and record["attempts"][1]["miou_drop"] > 0.01
    assert record["attempts"][1]["calibration_images"] == 2 * len(learnable_context.train)
    assert "block0_project_conv" in record["float_layers"] and record["mode"] == "int8"
    assert record["attempts"][-1]["miou_drop"] <= 0.01
    assert outcome.state.tflite_mode == "int8" and record["input_quantization"] == [1.0, 0]
    assert sorted(path.name for path in (learnable_context.stage_dir / "attempts").iterdir()) == \
        ["01-int8.tflite", "02-more_calibration.tflite", "03-float_layers.tflite"]
