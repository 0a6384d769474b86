"""The hostile-input sweep's findings, one test each: every failure is one line naming the file or
option (exit 2), and no good artifact is replaced by a bad one. The Lambda ways in are in
test_hostile_input.py; resume keys that follow data files in test_resume_keys.py."""

import json
import tracemalloc

import cv2
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edgeseg.cli import main
from edgeseg.errors import DataError, ModelError
from tests.helpers import make_split, tiny_recipe_dict, write_image, write_label, write_yaml

CLASSES = ["x", "y", "z", "w"]


def one_error_line(capsys) -> str:
    """The one error line the CLI printed (progress lines aside), with no traceback."""
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("edgeseg: error: ")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def test_a_full_disk_under_a_training_checkpoint_is_one_line(tmp_path, capsys, monkeypatch):
    """TensorFlow raises ResourceExhaustedError, not OSError, when its checkpoint writer meets a full disk."""
    from edgeseg._keras import tf

    def full_disk(self, *args, **kwargs):
        raise tf.errors.ResourceExhaustedError(
            None, None, f"{tmp_path}/ckpt.data-00000-of-00001.tempstate; No space left on device"
        )

    monkeypatch.setattr(tf.train.CheckpointManager, "save", full_disk)
    recipe = tiny_recipe_dict(stages=[{"train": {"epochs": 1}}, {"quantize": {}}])
    recipe["data"].update(num_train=8, num_val=4)
    del recipe["student"]
    path = write_yaml(tmp_path / "tiny.yaml", recipe)
    assert main(["export", str(path), "--runs_dir", str(tmp_path / "runs")]) == 2
    line = one_error_line(capsys)
    assert "01-train: cannot write the run folder: No space left on device (train)" in line
    report = json.loads((tmp_path / "runs" / "tiny" / "report.json").read_text())
    assert report["status"] == "failed" and "No space left" in report["error"]


@pytest.mark.parametrize("kind", ["keras", "tflite"])
def test_eval_scores_a_model_whose_logits_are_smaller_than_its_input(tmp_path, capsys, kind):
    """Third-party models often end at 1/4 resolution; scoring resizes their logits up."""
    from edgeseg._keras import keras
    from edgeseg.quantization.converters import convert_float

    image = keras.Input((32, 32, 3))
    features = keras.layers.Conv2D(8, 3, strides=2, padding="same", activation="relu")(keras.layers.Rescaling(1 / 255)(image))
    logits = keras.layers.Conv2D(4, 1)(keras.layers.AveragePooling2D()(features))
    model = keras.Model(image, logits)
    path = tmp_path / f"quarter.{kind}"
    if kind == "keras":
        model.save(path)
    else:
        path.write_bytes(convert_float(model))
    assert main(["eval", str(path), "--data", "synthetic", "--json_output"]) == 0
    scores = json.loads(capsys.readouterr().out)
    assert 0 <= scores["miou"] <= 1 and scores["images"] > 0


def test_eval_scores_any_split_folder(tmp_path, capsys, tiny_export):
    root = tmp_path / "ds"
    make_split(root, "test", ["a", "b"], num_classes=4)
    (root / "dataset.json").write_text(json.dumps({"classes": ["background", "disk", "box", "triangle"]}))
    assert main(["eval", str(tiny_export / "model.tflite"), "--data", str(root), "--split", "test"]) == 0
    assert "on 2 test images" in capsys.readouterr().out
    assert main(["eval", str(tiny_export / "model.tflite"), "--data", str(root), "--split", "holdout"]) == 2
    assert "data.holdout.images" in one_error_line(capsys)
    assert main(["eval", str(tiny_export / "model.tflite"), "--data", "synthetic", "--split", "test"]) == 2
    assert "synthetic data has the splits train and val" in one_error_line(capsys)


@pytest.mark.parametrize(
    ("arguments", "option"),
    [
        (["demo", "EXPORT", "--no-window", "--save", "OUT", "--max_frames", "abc"], "--max_frames"),
        (["demo", "EXPORT", "--no-window", "--save", "OUT", "--threads", "0"], "--threads"),
        (["demo", "EXPORT", "--web", "--port", "99999"], "--port"),
        (["profile", "EXPORT/model.tflite", "--top", "abc"], "--top"),
        (["eval", "EXPORT/model.tflite", "--data", "synthetic", "--threads", "abc"], "--threads"),
        (["eval", "EXPORT/model.tflite", "--data", "synthetic", "--json_output", "maybe"], "--json_output"),
        (["export", "RECIPE", "--resume", "sure"], "--resume"),
    ],
)
def test_a_bad_command_line_value_is_one_line_naming_the_option(tmp_path, capsys, tiny_export, arguments, option):
    replace = {
        "EXPORT": str(tiny_export),
        "EXPORT/model.tflite": str(tiny_export / "model.tflite"),
        "OUT": str(tmp_path / "out"),
        "RECIPE": str(write_yaml(tmp_path / "r.yaml", tiny_recipe_dict())),
    }
    assert main([replace.get(argument, argument) for argument in arguments]) == 2
    line = one_error_line(capsys)
    assert f"{option} takes" in line or f"{option} is a switch" in line, line


def test_a_failed_demo_keeps_the_earlier_video(tmp_path, tiny_export, monkeypatch):
    from edgeseg.demo import desktop

    video = tmp_path / "out.mp4"
    desktop.run_demo(str(tiny_export), source="synthetic", save=str(video), window=False, max_frames=3)
    good = video.read_bytes()
    assert good and not list(tmp_path.glob(".*partial*"))
    render = desktop.DesktopDemo.render
    calls = []

    def failing(self, frame, frame_seconds=None):
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("a frame the interpreter cannot run")
        return render(self, frame, frame_seconds)

    monkeypatch.setattr(desktop.DesktopDemo, "render", failing)
    with pytest.raises(RuntimeError):
        desktop.run_demo(str(tiny_export), source="synthetic", save=str(video), window=False, max_frames=10)
    assert video.read_bytes() == good, "the earlier video was overwritten by a partial one"
    assert not list(tmp_path.glob(".*partial*")), "the partial video was left behind"


def test_scoring_memory_does_not_grow_with_the_class_count():
    """Resizing logits to a label ran all classes at once: about 92 bytes per label pixel measured.
    One class at a time, a 2000x2000 label with 11 classes costs two float maps and a class map."""
    from edgeseg.scoring import upsampled_labels

    logits = np.random.default_rng(0).normal(size=(64, 64, 11)).astype(np.float32)
    tracemalloc.start()
    ids = upsampled_labels(logits, (2000, 2000))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 12 * 2000 * 2000, f"{peak / 2000 / 2000:.1f} bytes per label pixel"
    reference = np.stack([cv2.resize(logits[..., c], (2000, 2000), interpolation=cv2.INTER_LINEAR) for c in range(11)], -1)
    np.testing.assert_array_equal(ids, reference.argmax(-1))


def test_an_image_over_the_size_limit_is_refused_before_decoding(tmp_path, monkeypatch):
    from edgeseg import images

    monkeypatch.setattr(images, "MAX_IMAGE_PIXELS", 40 * 48 - 1)
    path = write_image(tmp_path / "big.png")
    with pytest.raises(DataError, match=r"big\.png: 48x40 pixels is more than edgeseg reads \(1,919\)"):
        images.read_rgb(path)


def test_a_corrupt_png_is_one_line_with_no_native_chatter(tmp_path, capfd):
    root = tmp_path / "ds"
    make_split(root, "train", ["a", "b"], num_classes=4)
    make_split(root, "val", ["c"], num_classes=4)  # check finds every split's files
    write_label(root / "train" / "labels" / "b.png", np.zeros((40, 48), np.uint8))
    (root / "train" / "labels" / "b.png").write_bytes((root / "train" / "labels" / "b.png").read_bytes()[:60])
    recipe = write_yaml(
        tmp_path / "r.yaml",
        tiny_recipe_dict(data={"format": "folder", "root": str(root), "classes": CLASSES, "input_size": [32, 32]}),
    )
    assert main(["check", str(recipe)]) == 0
    capfd.readouterr()
    from edgeseg.data import load_split
    from edgeseg.recipe import load_recipe

    with pytest.raises(DataError, match=r"b\.png: not a readable image"):
        load_split(load_recipe(recipe).data, "train", 0)
    assert "libpng" not in capfd.readouterr().err


def test_shapes_in_errors_are_plain_numbers(tmp_path):
    from edgeseg._keras import keras
    from edgeseg.quantization.converters import convert_float
    from edgeseg.tflite import TFLiteSegmenter

    vector = keras.Input((8,))
    path = tmp_path / "vector.tflite"
    path.write_bytes(convert_float(keras.Model(vector, keras.layers.Dense(2)(vector))))
    with pytest.raises(ModelError) as raised:
        TFLiteSegmenter(path)
    assert "Received: [1, 8]" in str(raised.value) and "np." not in str(raised.value)


def test_control_characters_from_a_recipe_are_escaped(tmp_path, capsys):
    recipe = tiny_recipe_dict()
    recipe["data"]["format"] = "fol\x00der\x1b[31m"
    assert main(["check", str(write_yaml(tmp_path / "r.yaml", recipe))]) == 2
    line = one_error_line(capsys)
    assert "fol\\x00der\\x1b[31m" in line and "\x00" not in line and "\x1b" not in line


# ----------------------------------------------------------------------------- fuzzing the command line

COMMANDS = ["export", "check", "eval", "profile", "demo", "schema", "frobnicate"]
OPTIONS = [
    "--threads",
    "--top",
    "--max_frames",
    "--port",
    "--split",
    "--data",
    "--runs_dir",
    "--resume",
    "--json_output",
    "--save",
    "--source",
    "--web",
    "--no-window",
    "--trust_model_code",
    "--bogus",
]
VALUES = st.one_of(st.sampled_from(["abc", "-1", "0", "1.5", "", "nan", "1e9", "true", "\x00", "../../etc"]), st.text(max_size=8))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    command=st.sampled_from(COMMANDS),
    target=st.sampled_from(["missing.tflite", "missing.yaml", "", "\x1b[2J"]),
    options=st.lists(st.tuples(st.sampled_from(OPTIONS), VALUES), max_size=3),
)
def test_any_command_line_ends_in_a_clean_exit(tmp_path, capsys, command, target, options):
    """Whatever the arguments, no traceback: 0, one line with exit 2, or fire's usage (exit 2)."""
    arguments = [command, target] if command != "schema" else [command]
    for option, value in options:
        arguments += [option, value]
    code = main(arguments)
    err = capsys.readouterr().err
    assert code in (0, 2), (arguments, code, err[-500:])
    assert "Traceback" not in err
    for line in err.splitlines():
        if line.startswith("edgeseg: error:"):
            assert all(32 <= ord(char) != 127 for char in line), line
