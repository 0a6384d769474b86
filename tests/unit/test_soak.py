"""The soak helper runs frames through a real .tflite and reports memory samples."""

from edgeseg.demo.desktop import demo_soak
from edgeseg.quantization.converters import convert_float
from edgeseg.soak import interpreter_soak, resident_kib


def test_soak_samples_memory_over_the_frames(tmp_path, tiny_model):
    path = tmp_path / "model.tflite"
    path.write_bytes(convert_float(tiny_model))
    result = interpreter_soak(path, frames=200, samples=4)
    assert result["frames"] == 200 and len(result["rss_kib"]) == 4
    assert result["rss_growth_kib"] == result["rss_kib"][-1] - result["rss_kib"][0]
    assert resident_kib() > 0 and all(sample > 0 for sample in result["rss_kib"])


def test_demo_soak_runs_the_demo_frame_path(tiny_export):
    result = demo_soak(tiny_export, frames=60, samples=3)
    assert result["path"] == "desktop demo" and result["frames"] == 60 and len(result["rss_kib"]) == 3
