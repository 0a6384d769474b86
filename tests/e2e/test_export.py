"""The user's path end to end: `python -m edgeseg export` on a tiny recipe, in a subprocess."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import edgeseg
from edgeseg.tflite import TFLiteSegmenter
from tests.helpers import REPO, run_cli, tiny_recipe_dict, weights_equal, write_yaml

STAGE_FOLDERS = ["01-train", "02-distill", "03-prune", "04-cluster", "05-quantize", "06-verify", "07-export"]
STAGE_NAMES = [folder[3:] for folder in STAGE_FOLDERS]
NATIVE_NOISE = ("cuda", "oneDNN", "XNNPACK", "absl::", "WARNING", "Traceback")


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """One full tiny run through the real CLI, shared by the checks below."""
    workdir = tmp_path_factory.mktemp("e2e")
    recipe = write_yaml(workdir / "tiny.yaml", tiny_recipe_dict())
    completed = run_cli("export", str(recipe), cwd=workdir)
    return workdir / "runs" / "tiny", recipe, completed


def test_export_succeeds_quietly_and_says_where_the_model_is(exported):
    run_dir, _, completed = exported
    assert completed.returncode == 0, completed.stderr[-3000:]
    last_lines = completed.stdout.strip().splitlines()
    assert last_lines[0].startswith("model: runs/tiny/model.tflite (int8")
    assert "int8 .tflite" in last_lines[1] and "vs float" in last_lines[1]
    for noise in NATIVE_NOISE:
        assert noise not in completed.stderr, f"{noise!r} leaked into the output:\n{completed.stderr[-2000:]}"
    assert all(line.startswith("edgeseg: ") for line in completed.stderr.splitlines() if line.strip())


def test_run_folder_holds_every_artifact(exported):
    run_dir, _, _ = exported
    for name in ["model.tflite", "labels.txt", "edgeseg.json", "report.json", "report.md", "recipe.yaml"]:
        assert (run_dir / name).is_file(), name
    for folder in STAGE_FOLDERS:
        assert (run_dir / folder / "record.json").is_file(), folder
    report_md = (run_dir / "report.md").read_text()
    for plot in ["miou_vs_size", "class_iou", "confusion_matrix", "gallery"]:
        assert (run_dir / "plots" / f"{plot}.png").stat().st_size > 1000, plot
        assert f"(plots/{plot}.png)" in report_md, plot
    assert "| int8 .tflite |" in report_md and "| float .tflite |" in report_md
    report = json.loads((run_dir / "report.json").read_text())
    assert report["status"] == "completed"
    assert report["completed_stages"] == [f.split("-", 1)[1] for f in STAGE_FOLDERS]
    assert edgeseg.load_recipe(run_dir / "recipe.yaml").hash == report["recipe_hash"]


def test_exported_model_is_full_int8_and_runs(exported):
    run_dir, _, _ = exported
    segmenter = TFLiteSegmenter(run_dir / "model.tflite")
    assert segmenter.input["dtype"] == np.uint8 and segmenter.input_quantization == (1.0, 0)
    assert segmenter.output["dtype"] == np.int8
    assert segmenter.float_ops() == []
    labels = segmenter.predict_labels(np.zeros((2, 32, 32, 3), np.uint8))
    assert labels.shape == (2, 32, 32) and labels.max() < 4


def test_reported_int8_miou_is_what_rescoring_the_file_gives(exported):
    run_dir, recipe, _ = exported
    verify = json.loads((run_dir / "06-verify" / "record.json").read_text())
    rescored = edgeseg.evaluate(run_dir / "model.tflite", recipe)
    assert rescored["miou"] == pytest.approx(verify["quantized"]["miou"], abs=1e-12)
    assert rescored["confusion_matrix"] == verify["quantized"]["confusion_matrix"]
    float_rescored = edgeseg.evaluate(run_dir / "04-cluster" / "model.keras", recipe)
    assert float_rescored["miou"] == pytest.approx(verify["float"]["miou"], abs=1e-6)


def test_eval_command_prints_the_same_miou(exported):
    run_dir, recipe, _ = exported
    verify = json.loads((run_dir / "06-verify" / "record.json").read_text())
    completed = run_cli("eval", str(run_dir / "model.tflite"), "--data", str(recipe), cwd=run_dir)
    assert completed.returncode == 0, completed.stderr
    assert f"mIoU {verify['quantized']['miou']:.4f}" in completed.stdout


def test_failed_gate_exits_3_keeps_completed_stages_and_writes_the_report(tiny_export, tmp_path):
    recipe = tiny_recipe_dict(
        teacher={"path": str(tiny_export / "01-train" / "model.keras")},
        stages=[{"quantize": {"calibration_images": 4}}, {"verify": {"min_miou": 0.99}}, {"export": {}}],
    )
    del recipe["student"]
    completed = run_cli("export", str(write_yaml(tmp_path / "gate.yaml", recipe)), cwd=tmp_path)
    assert completed.returncode == 3, completed.stderr[-2000:]
    error_lines = [line for line in completed.stderr.splitlines() if line.startswith("edgeseg: error:")]
    assert len(error_lines) == 1 and "verify.min_miou" in error_lines[0]
    run_dir = tmp_path / "runs" / "tiny"
    report = json.loads((run_dir / "report.json").read_text())
    assert report["status"] == "gate_failed" and report["completed_stages"] == ["quantize", "verify"]
    assert (run_dir / "01-quantize" / "model.tflite").is_file() and (run_dir / "02-verify" / "record.json").is_file()
    assert not (run_dir / "model.tflite").exists(), "a model that failed its gate must not be exported"
    assert "verify.min_miou" in (run_dir / "report.md").read_text()


def export_killed_once_exists(recipe, path, cwd, sent=signal.SIGKILL) -> tuple[int, str]:
    """Runs `edgeseg export RECIPE`, sends it `sent` as soon as `path` exists (or it ends); returns
    its exit code and what it wrote on stderr."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    process = subprocess.Popen(
        [sys.executable, "-m", "edgeseg", "export", str(recipe)],
        cwd=cwd,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 600
    while not path.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    process.send_signal(sent)
    _, stderr = process.communicate()
    return process.returncode, stderr


def test_sigterm_ends_a_run_like_ctrl_c_with_a_report(tmp_path):
    recipe = write_yaml(tmp_path / "tiny.yaml", tiny_recipe_dict())
    run_dir = tmp_path / "runs" / "tiny"
    code, stderr = export_killed_once_exists(
        recipe, run_dir / "01-train" / "checkpoint" / "progress.json", tmp_path, signal.SIGTERM
    )
    assert code == 128 + signal.SIGTERM, stderr[-2000:]
    assert "edgeseg: terminated; the folders of completed stages are kept" in stderr and "Traceback" not in stderr
    report = json.loads((run_dir / "report.json").read_text())
    assert report["status"] == "interrupted" and report["error"] == "interrupted during train"


# What a record holds that is timed on the machine rather than computed from the recipe.
TIMED = ("seconds", "latency", "memory_kib")


def computed(record: dict) -> dict:
    """The record without timings, and without the gzip size of a .keras artifact: Keras writes the
    save date into the file (metadata.json), so its compressed size may differ by a byte."""
    keras_artifact = str(record.get("artifact", "")).endswith(".keras")
    return {key: value for key, value in record.items() if key not in TIMED and not (keras_artifact and key == "gzip_bytes")}


def assert_same_records(reference_dir, run_dir, folders) -> None:
    """Each stage folder's record in `run_dir` holds what the reference's does, timings aside."""
    for folder in folders:
        first, second = (json.loads((d / folder / "record.json").read_text()) for d in (reference_dir, run_dir))
        assert computed(first) == computed(second), folder


@pytest.mark.ci  # 169 s in CI: the whole tiny recipe again
def test_a_second_process_gives_the_same_file_and_records(exported, tmp_path):
    """Runs are reproducible: the same recipe in another process, byte for byte (seconds aside)."""
    run_dir, recipe, _ = exported
    again = run_cli("export", str(recipe), cwd=tmp_path)
    assert again.returncode == 0, again.stderr[-3000:]
    rerun_dir = tmp_path / "runs" / "tiny"
    assert (rerun_dir / "model.tflite").read_bytes() == (run_dir / "model.tflite").read_bytes()
    assert_same_records(run_dir, rerun_dir, STAGE_FOLDERS)


@pytest.mark.ci  # 89 s in CI: two processes
def test_a_run_killed_mid_stage_resumes_to_the_same_model(exported, tmp_path):
    """Killed in its first epoch and resumed, training gives the weights and record of the run that
    was never killed. The recipe stops after train (without the student no stage uses): the stages
    after it are deterministic (the test above), so the rest would only take time."""
    from edgeseg.models.io import load_model

    reference_dir = exported[0]
    recipe = tiny_recipe_dict()
    recipe["stages"] = recipe["stages"][:1]
    del recipe["student"]
    recipe = write_yaml(tmp_path / "tiny.yaml", recipe)
    run_dir = tmp_path / "runs" / "tiny"
    progress = run_dir / "01-train" / "checkpoint" / "progress.json"
    export_killed_once_exists(recipe, progress, cwd=tmp_path)
    assert json.loads(progress.read_text())["epochs_done"] == 1, "killed after the first of two epochs"
    assert not (run_dir / "01-train" / "record.json").exists()

    resumed = run_cli("export", str(recipe), "--resume", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "resuming at epoch 2 of 2" in resumed.stderr
    assert_same_records(reference_dir, run_dir, STAGE_FOLDERS[:1])
    expected, received = (load_model(d / "01-train" / "model.keras") for d in (reference_dir, run_dir))
    assert weights_equal(expected.get_weights(), received.get_weights())
    train_record = json.loads((run_dir / "01-train" / "record.json").read_text())
    assert [epoch["epoch"] for epoch in train_record["epochs"]] == [1, 2]
    assert not (run_dir / "01-train" / "checkpoint").exists(), "a completed stage removes its checkpoint"
    report = json.loads((run_dir / "report.json").read_text())
    assert report["status"] == "completed" and report["completed_stages"] == STAGE_NAMES[:1]


def test_editing_export_output_reruns_quantize_and_exports_what_the_recipe_says(exported, tmp_path):
    """export.output is read by quantize (it converts the form export ships): a logits run resumed
    with `output: labels` reuses the training stages and ships uint8 class ids."""
    shutil.copytree(exported[0], tmp_path / "runs" / "tiny")
    recipe = tiny_recipe_dict()
    recipe["stages"][6]["export"]["output"] = "labels"
    rerun = run_cli("export", str(write_yaml(tmp_path / "tiny.yaml", recipe)), "--resume", cwd=tmp_path)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert all(f"[{index}] {name} reused" in rerun.stderr for index, name in enumerate(STAGE_NAMES[:4], start=1))
    assert "quantize reused" not in rerun.stderr and "[5/7] quantize" in rerun.stderr
    segmenter = TFLiteSegmenter(tmp_path / "runs" / "tiny" / "model.tflite")
    assert segmenter.outputs_labels and list(segmenter.output["shape"]) == [1, 32, 32]


def test_int8_kernels_keep_the_pruned_zeros_and_the_clusters(exported):
    run_dir = exported[0]
    quantize = json.loads((run_dir / "05-quantize" / "record.json").read_text())
    kernels = quantize["kernels"]
    assert kernels["lost"] == []
    assert kernels["sparsity_of_pruned_layers"] >= 0.49, "tiny recipe prunes to 0.5"
    assert kernels["max_unique_per_channel_of_clustered_layers"] <= 8, "tiny recipe clusters to 8"
    parts = kernels["gzip_breakdown"]
    assert parts["whole"] == quantize["gzip_bytes"]
    assert parts["compressed_kernels"] > 0 and parts["other_kernels"] > 0 and parts["biases_scales_and_graph"] > 0
    assert parts["floor"] == parts["other_kernels"] + parts["biases_scales_and_graph"] < parts["whole"]
    assert f"floor {parts['floor'] / 1024:.1f} KiB (the same file" in (run_dir / "report.md").read_text()


@pytest.mark.slow  # a tool; the breakdown itself is checked in the default suite (above)
def test_the_size_breakdown_tool_splits_the_files_gzip_as_quantize_recorded(exported):
    run_dir = exported[0]
    parts = json.loads((run_dir / "05-quantize" / "record.json").read_text())["kernels"]["gzip_breakdown"]
    tool = [
        sys.executable,
        str(REPO / "tools/size_breakdown.py"),
        str(run_dir / "05-quantize" / "model.tflite"),
        str(run_dir / "04-cluster" / "model.keras"),
    ]
    completed = subprocess.run(tool, env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True, text=True, timeout=300)
    assert completed.returncode == 0, completed.stderr[-3000:]
    row = next(line for line in completed.stdout.splitlines() if line.startswith("| edgeseg |"))
    expected = [
        f"{parts[part] / 1024:.1f} ({parts[part] / parts['whole']:.1%})"
        for part in ("compressed_kernels", "other_kernels", "biases_scales_and_graph", "floor", "whole")
    ]
    assert row.split(" | ")[1:6] == expected


@pytest.mark.slow  # the modes' conversion is in the default suite (test_stages); this is the whole path
def test_a_float16_run_is_verified_exported_and_demoed_as_float16(tmp_path):
    from edgeseg.contract import load_export
    from edgeseg.demo.desktop import DesktopDemo
    from edgeseg.recipe import parse_recipe

    recipe = tiny_recipe_dict(
        stages=[
            {"train": {"epochs": 1}},
            {"quantize": {"mode": "float16", "calibration_images": 8}},
            {"verify": {}},
            {"export": {}},
        ]
    )
    del recipe["student"]
    result = edgeseg.run(parse_recipe(recipe), runs_dir=tmp_path)
    model_line, scores_line, _ = result.summary_lines()
    assert "(float16," in model_line and "float16 .tflite" in scores_line
    assert "| float16 .tflite |" in (result.run_dir / "report.md").read_text()
    export = load_export(result.run_dir)
    assert export.description["input"]["dtype"] == "float32"
    shown, _ = DesktopDemo(export).render(np.zeros((48, 64, 3), np.uint8))
    assert shown.shape[1] == 64


def plain_saved_model(keras_model, folder):
    """A SavedModel with only a serving signature, as Keras 3's export or plain TensorFlow write it."""
    from edgeseg._keras import tf

    class Exported(tf.Module):
        def __init__(self, model):
            super().__init__()
            self.model = model

        @tf.function(input_signature=[tf.TensorSpec([None, *keras_model.input_shape[1:]], tf.float32)])
        def serve(self, images):
            return {"logits": self.model(images, training=False)}

    exported = Exported(keras_model)
    tf.saved_model.save(exported, str(folder), signatures={"serving_default": exported.serve})
    assert not (folder / "keras_metadata.pb").exists()
    return folder


@pytest.mark.parametrize("teacher_kind", ["tflite", pytest.param("saved_model", marks=pytest.mark.slow)])
def test_a_teacher_that_can_only_teach_distills_a_student_end_to_end(tiny_export, tmp_path, teacher_kind):
    from edgeseg.models.io import load_model
    from edgeseg.recipe import parse_recipe

    teacher_path = (
        tiny_export / "model.tflite"
        if teacher_kind == "tflite"
        else plain_saved_model(load_model(tiny_export / "01-train" / "model.keras"), tmp_path / "exported")
    )
    recipe = tiny_recipe_dict(
        teacher={"path": str(teacher_path)},
        stages=[{"distill": {"epochs": 1}}, {"quantize": {"calibration_images": 8}}, {"verify": {}}],
    )
    result = edgeseg.run(parse_recipe(recipe), runs_dir=tmp_path)
    distilled = result.record("distill")
    assert distilled["teacher"] == teacher_path.stem and distilled["epochs"][0]["loss"] > 0
    assert result.record("verify")["quantized"]["images"] == 16


def test_a_tflite_teacher_cannot_be_trained(tiny_export):
    from edgeseg.errors import RecipeError
    from edgeseg.recipe import parse_recipe

    recipe = tiny_recipe_dict(teacher={"path": str(tiny_export / "model.tflite")})
    with pytest.raises(RecipeError, match="can only teach"):
        parse_recipe(recipe)
