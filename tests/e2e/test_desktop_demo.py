"""`python -m edgeseg demo`: the desktop demo, headless, on a generated video."""

import json

import cv2
import numpy as np
import pytest

from edgeseg.data.synthetic import generate_scenes
from edgeseg.tflite import TFLiteSegmenter
from tests.helpers import run_cli

FRAME_SIZE = (96, 128)
FRAMES = 12


@pytest.fixture(scope="module")
def scene_video(tmp_path_factory):
    """A short MJPG video of synthetic scenes, and its frames as OpenCV decodes them (RGB)."""
    path = tmp_path_factory.mktemp("video") / "scenes.avi"
    images, _ = generate_scenes(FRAMES, FRAME_SIZE, num_classes=4, seed=3, split="demo")
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, FRAME_SIZE[::-1])
    for image in images:
        writer.write(np.ascontiguousarray(image[..., ::-1]))
    writer.release()
    capture = cv2.VideoCapture(str(path))
    decoded = []
    while (frame := capture.read())[0]:
        decoded.append(frame[1][..., ::-1])
    capture.release()
    assert len(decoded) == FRAMES
    return path, decoded


def interpreter_mask(model_path, frame_rgb):
    """The mask the contract gives for a frame, computed here without the demo's code."""
    segmenter = TFLiteSegmenter(model_path)
    height, width = segmenter.input_size
    model_input = cv2.resize(frame_rgb, (width, height), interpolation=cv2.INTER_LINEAR)
    ids = segmenter.predict_raw(model_input).argmax(-1).astype(np.uint8)
    return cv2.resize(ids, frame_rgb.shape[1::-1], interpolation=cv2.INTER_NEAREST)


def mask_in_overlay(shown_rgb, frame_rgb, colors):
    """Which class color, blended half over the frame, each shown pixel is closest to."""
    candidates = np.stack([frame_rgb * 0.5 + np.asarray(color) * 0.5 for color in colors])
    return np.abs(candidates - shown_rgb[None].astype(np.float32)).sum(-1).argmin(0)


def test_saved_frames_carry_the_interpreters_mask(tiny_export, scene_video, tmp_path):
    video, frames = scene_video
    completed = run_cli(
        "demo", str(tiny_export), "--source", str(video), "--save", str(tmp_path / "frames"), "--no-window", cwd=tmp_path
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert f"demo: {FRAMES} frames" in completed.stdout
    colors = [c["color"] for c in json.loads((tiny_export / "edgeseg.json").read_text())["classes"]]
    saved = sorted((tmp_path / "frames").glob("frame_*.png"))
    assert len(saved) == FRAMES
    for path, frame in zip(saved, frames):
        shown = cv2.imread(str(path))[..., ::-1]
        assert shown.shape[0] > FRAME_SIZE[0] and shown.shape[1] == FRAME_SIZE[1], "frame with a status bar under it"
        expected = interpreter_mask(tiny_export / "model.tflite", frame)
        drawn = mask_in_overlay(shown[: FRAME_SIZE[0]], frame, colors)
        assert (drawn == expected).mean() >= 0.999, path.name


def test_saving_a_video_keeps_every_frame(tiny_export, scene_video, tmp_path):
    video, _ = scene_video
    out = tmp_path / "out.mp4"
    completed = run_cli(
        "demo",
        str(tiny_export / "model.tflite"),
        "--source",
        str(video),
        "--save",
        str(out),
        "--no-window",
        "--max_frames",
        "5",
        cwd=tmp_path,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    capture = cv2.VideoCapture(str(out))
    assert int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) == 5
    assert int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)) == FRAME_SIZE[1]
    capture.release()


def test_a_folder_of_images_is_a_source(tiny_export, tmp_path):
    images, _ = generate_scenes(3, FRAME_SIZE, num_classes=4, seed=4, split="demo")
    for index, image in enumerate(images):
        cv2.imwrite(str(tmp_path / f"{index}.png"), image[..., ::-1])
    completed = run_cli(
        "demo", str(tiny_export), "--source", str(tmp_path), "--save", str(tmp_path / "out"), "--no-window", cwd=tmp_path
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert len(list((tmp_path / "out").glob("*.png"))) == 3


@pytest.mark.parametrize(
    "arguments, message",
    [
        (
            ["--source", "missing.mp4", "--no-window", "--save", "out.mp4"],
            "expected a camera index, a video file, a folder of images",
        ),
        (["--source", "0", "--no-window"], "would run unseen forever"),
        (
            ["--source", "not_a_video.mp4", "--no-window", "--save", "out.mp4"],
            "cannot open the video. Received: source=not_a_video.mp4",
        ),
        (["--source", "synthetic", "--no-window", "--save", "out.webm"], "Received: save=out.webm"),
        (["--source", "synthetic", "--no-window", "--max_frames", "0"], "Received: max_frames=0"),
    ],
)
def test_bad_demo_input_gets_one_line(tiny_export, tmp_path, arguments, message):
    (tmp_path / "not_a_video.mp4").write_text("these are not frames")
    completed = run_cli("demo", str(tiny_export), *arguments, cwd=tmp_path)
    assert completed.returncode == 2
    lines = completed.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], completed.stderr


def test_a_file_that_is_not_a_model_is_refused(tmp_path):
    (tmp_path / "notes.tflite").write_text("not a model")
    completed = run_cli("demo", str(tmp_path / "notes.tflite"), "--no-window", "--source", "synthetic", cwd=tmp_path)
    assert completed.returncode == 2
    assert completed.stderr.strip().splitlines() == [
        f"edgeseg: error: {tmp_path / 'notes.tflite'}: not a .tflite model, and no edgeseg.json beside it"
    ]


def test_a_window_without_a_display_is_refused(tiny_export, tmp_path, monkeypatch):
    from edgeseg.demo.desktop import run_demo
    from edgeseg.errors import EdgesegError

    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    with pytest.raises(EdgesegError, match="--no-window"):
        run_demo(tiny_export, source=str(tmp_path))


def test_an_export_without_its_description_is_refused(tiny_export, tmp_path):
    from edgeseg.contract import load_export
    from edgeseg.errors import ModelError

    broken = json.loads((tiny_export / "edgeseg.json").read_text())
    del broken["input"]["dtype"]
    (tmp_path / "model.tflite").write_bytes((tiny_export / "model.tflite").read_bytes())
    (tmp_path / "edgeseg.json").write_text(json.dumps(broken))
    with pytest.raises(ModelError, match="lacks input.dtype"):
        load_export(tmp_path)
    (tmp_path / "edgeseg.json").unlink()
    assert load_export(tmp_path / "model.tflite").input_size == (32, 32), "falls back to the embedded edgeseg.json"
