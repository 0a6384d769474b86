"""tools/time_files.py: .tflite files timed alternately, as ratios to the first."""

import re
import subprocess
import sys

import numpy as np

from edgeseg.quantization.converters import convert_int8
from tests.helpers import REPO

TOOL = [sys.executable, str(REPO / "tools/time_files.py")]


def test_each_file_gets_a_row_with_its_ratio_to_the_first(tiny_model, tmp_path):
    calibration = np.random.default_rng(0).uniform(0, 255, (4, 32, 32, 3)).astype(np.float32)
    first, second = tmp_path / "first.tflite", tmp_path / "second.tflite"
    first.write_bytes(convert_int8(tiny_model, calibration))
    second.write_bytes(first.read_bytes())
    result = subprocess.run(
        [*TOOL, str(first), str(second), "--threads", "1", "2", "--rounds", "2"], capture_output=True, text=True, check=True
    )
    lines = result.stdout.splitlines()
    assert lines[0] == "| file | bytes | latency 1 thr | latency 2 thr |"
    rows = {line.split(" | ")[0][2:]: line for line in lines[2:]}
    assert list(rows) == [str(first), str(second)]
    assert rows[str(first)].count("(1.00x)") == 2
    assert re.search(r"\| [0-9.]+ ms \([0-9.]+x\) \| [0-9.]+ ms \([0-9.]+x\) \|$", rows[str(second)])


def test_a_missing_file_is_named_in_one_line(tmp_path):
    result = subprocess.run([*TOOL, str(tmp_path / "absent.tflite")], capture_output=True, text=True)
    assert result.returncode == 2
    assert f"{tmp_path / 'absent.tflite'}: No such file or directory" in result.stderr.splitlines()[-1]
