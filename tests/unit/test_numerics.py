"""The kernel fingerprint (`edgeseg.numerics`, `tools/kernel_fingerprint.py`): one hash per op and
size, the same within a machine, another for other inputs; the tool names the ops that differ."""

import json
import subprocess
import sys
from pathlib import Path

from edgeseg.numerics import OPS, RESOLUTIONS, fingerprint

TOOL = Path(__file__).resolve().parents[2] / "tools" / "kernel_fingerprint.py"


def test_each_op_and_size_has_a_hash_that_repeats_and_follows_the_inputs():
    first = fingerprint()
    assert set(first) == {f"{op} {label}" for op in OPS for label, _, _ in RESOLUTIONS}
    assert fingerprint() == first
    other_inputs = fingerprint(seed=1)
    assert all(other_inputs[op] != first[op] for op in first)


def test_the_tool_compares_with_another_machine_file(tmp_path):
    mine = tmp_path / "mine.json"
    subprocess.run([sys.executable, str(TOOL), "--json", str(mine)], check=True, capture_output=True)
    written = json.loads(mine.read_text())
    assert {"environment", "hashes"} <= set(written) and "cpu_isa" in written["environment"]
    written["hashes"]["conv3x3 64x64"] = "another"
    other = tmp_path / "other.json"
    other.write_text(json.dumps(written))
    compared = subprocess.run([sys.executable, str(TOOL), "--compare", str(other)], capture_output=True, text=True)
    assert (
        compared.returncode == 0
        and compared.stdout.splitlines()[-1] == f"1 of {len(written['hashes'])} ops differ: conv3x3 64x64"
    )
    refused = subprocess.run(
        [sys.executable, str(TOOL), "--compare", str(tmp_path / "none.json")], capture_output=True, text=True
    )
    assert refused.returncode != 0 and len(refused.stderr.strip().splitlines()) == 1 and "none.json" in refused.stderr
