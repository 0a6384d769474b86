"""`export: {output: labels}`: class ids in the graph, argmax before the head's last upsample."""

import json

import numpy as np
import pytest

from edgeseg._keras import keras
from edgeseg.contract import load_export
from edgeseg.demo.android import copy_export_to_app
from edgeseg.errors import ModelError
from edgeseg.models.labels import labels_model
from edgeseg.quantization.converters import calibration_images, convert_int8
from edgeseg.scoring import score_split, upsampled_labels
from edgeseg.tflite import TFLiteSegmenter
from tests.helpers import android_app_copy


def test_labels_before_the_upsample_are_the_low_resolution_argmax_repeated(tiny_model, tiny_context):
    images = tiny_context.val.images[:2].astype(np.float32)
    ids = labels_model(tiny_model)(images).numpy()
    factor = tiny_model.layers[-1].size[0]
    low_resolution = tiny_model.layers[-1].input
    logits = keras.Model(tiny_model.input, low_resolution)(images).numpy()
    expected = logits.argmax(-1).repeat(factor, axis=1).repeat(factor, axis=2)
    assert ids.dtype == np.uint8 and ids.shape == images.shape[:3]
    assert np.array_equal(ids, expected)
    after = labels_model(tiny_model, before_upsample=False)(images).numpy()
    assert np.array_equal(after, tiny_model(images).numpy().argmax(-1))


def test_a_labels_file_is_full_int8_with_uint8_ids_that_follow_the_logits_file(tiny_model, tiny_context):
    calibration = calibration_images(tiny_context.train.images, 16, seed=0)
    ids = TFLiteSegmenter(convert_int8(labels_model(tiny_model), calibration))
    logits = TFLiteSegmenter(convert_int8(tiny_model, calibration))
    assert ids.outputs_labels and not logits.outputs_labels
    assert ids.output["dtype"] == np.uint8 and list(ids.output["shape"]) == [1, 32, 32]
    assert ids.float_ops() == [] and {"ARG_MAX", "DEPTH_TO_SPACE"} <= {op["op"] for op in ids.op_report()["ops"]}
    assert "RESIZE_BILINEAR" in {op["op"] for op in logits.op_report()["ops"]}
    images = tiny_context.val.images
    keras_low_resolution = labels_model(tiny_model)(images.astype(np.float32)).numpy()
    assert np.mean(ids.predict_labels(images) == keras_low_resolution) >= 0.95
    with pytest.raises(ModelError, match="expected logits"):
        ids.predict_logits(images[:1])
    scores = score_split(ids, tiny_context.val, tiny_context.num_classes)
    truth = tiny_context.val.labels
    labeled = truth != tiny_context.ignore_index
    assert scores["pixel_accuracy"] == pytest.approx(np.mean(ids.predict_labels(images)[labeled] == truth[labeled]))


def test_class_ids_are_resized_to_native_labels_nearest():
    ids = np.array([[0, 1], [2, 3]], np.uint8)
    assert np.array_equal(upsampled_labels(ids, (4, 4)), ids.repeat(2, 0).repeat(2, 1))


def test_a_labels_export_describes_its_output_and_the_demos_read_it(tiny_labels_export, tmp_path):
    description = json.loads((tiny_labels_export / "edgeseg.json").read_text())
    assert description["output"]["kind"] == "labels"
    assert description["output"]["shape"] == [1, 32, 32] and description["output"]["dtype"] == "uint8"
    export = load_export(tiny_labels_export)
    raw = export.segmenter().predict_raw(np.zeros((32, 32, 3), np.uint8))
    assert np.array_equal(export.class_ids(raw), raw)
    copied = copy_export_to_app(tiny_labels_export, android_app_copy(tmp_path))
    assert json.loads(copied[1].read_text()) == description
    report = (tiny_labels_export / "report.md").read_text()
    assert "logit error" not in report and "the argmax agrees on" in report
    verify = json.loads((tiny_labels_export / "02-verify" / "record.json").read_text())
    # The float reference takes its argmax in the same place, so the int8 file follows it closely.
    assert verify["agreement"]["max_logit_error"] is None and verify["agreement"]["pixel_agreement"] >= 0.9
    from edgeseg.evaluation import evaluate

    scores = evaluate(tiny_labels_export / "model.tflite", "synthetic")
    assert scores["classes"] == description_class_names(description) and 0 <= scores["miou"] <= 1


def description_class_names(description: dict) -> list[str]:
    return [entry["name"] for entry in description["classes"]]


@pytest.mark.slow  # the tool behind docs/MODELS.md; three conversions and timed runs (44 s in CI)
def test_the_head_output_measurement_converts_each_form_with_its_tail(tiny_model, tiny_context):
    from edgeseg.zoo_measurements import head_outputs_markdown, measure_head_outputs

    calibration = calibration_images(tiny_context.train.images, 8, seed=0)
    rows = measure_head_outputs(tiny_model, calibration, tiny_context.val, tiny_context.num_classes, runs=3)
    tails = {row["output"]: row["tail_ops"] for row in rows}
    resizes = tails["logits"]["RESIZE_BILINEAR"]  # LR-ASPP also upsamples inside its head
    assert tails == {
        "logits": {"RESIZE_BILINEAR": resizes},
        "labels_after_upsample": {"RESIZE_BILINEAR": resizes, "ARG_MAX": 1},
        "labels": {"RESIZE_BILINEAR": resizes - 1, "ARG_MAX": 1, "DEPTH_TO_SPACE": 1},
    }
    assert [row["app_argmax_ms"] > 0 for row in rows] == [True, False, False]
    assert all(0 <= row["miou"] <= 1 for row in rows)
    table = head_outputs_markdown(rows, command="measure")
    assert len(table) == 4 + len(rows) and table[0] == "Measured with `measure`."
