"""Resume keys: editing a value reruns exactly the first stage that reads it and every stage after it,
wherever in the recipe the value stands (read from the keys; `tests/e2e/test_export.py` resumes for
real, after a kill and after editing `export.output`)."""

import copy

import pytest

from edgeseg.pipeline import stage_keys
from edgeseg.recipe import parse_recipe
from tests.helpers import tiny_recipe_dict

STAGES = ["train", "distill", "prune", "cluster", "quantize", "verify", "export"]


def auto_recipe() -> dict:
    """The tiny recipe with `quantize: {mode: auto}`, which reads verify's budget and threads."""
    recipe = tiny_recipe_dict()
    recipe["stages"][4] = {"quantize": {"mode": "auto", "calibration_images": 16}}
    recipe["stages"][5] = {"verify": {"max_miou_drop": 0.5, "threads": 2}}
    return recipe


def edited(recipe: dict, path: tuple, value) -> dict:
    """A copy of `recipe` with the value at `path` (keys, or a stage name then its keys) replaced."""
    changed = copy.deepcopy(recipe)
    if path[0] in STAGES:
        node = next(entry[path[0]] for entry in changed["stages"] if path[0] in entry)
        path = path[1:]
    else:
        node = changed
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return changed


def first_rerun(before: dict, after: dict) -> str | None:
    """The first stage whose key changed; checks every later key changed too."""
    old, new = stage_keys(parse_recipe(before)), stage_keys(parse_recipe(after))
    changed = [a != b for a, b in zip(old, new)]
    if not any(changed):
        return None
    first = changed.index(True)
    assert all(changed[first:]), f"a stage after {STAGES[first]} kept its key: {changed}"
    return STAGES[first]


@pytest.mark.parametrize(
    ("path", "value", "rerun_from"),
    [
        (("seed",), 1, "train"),
        (("teacher", "alpha"), 0.5, "train"),
        (("data", "batch_size"), 4, "train"),
        (("train", "epochs"), 3, "train"),
        (("student", "alpha"), 0.5, "distill"),
        (("distill", "temperature"), 3.0, "distill"),
        (("prune", "target_sparsity"), 0.4, "prune"),
        (("cluster", "clusters"), 4, "cluster"),
        (("quantize", "calibration_images"), 8, "quantize"),
        (("verify", "max_miou_drop"), 0.2, "quantize"),  # mode auto's budget
        (("verify", "threads"), 1, "quantize"),  # mode auto scores with them
        (("verify", "min_miou"), 0.1, "verify"),
        (("export", "output"), "labels", "quantize"),  # quantize converts the form export ships
    ],
)
def test_an_edit_reruns_the_first_stage_that_reads_it_and_those_after(path, value, rerun_from):
    recipe = auto_recipe()
    assert first_rerun(recipe, edited(recipe, path, value)) == rerun_from


def test_plain_int8_does_not_read_the_verify_budget():
    recipe = tiny_recipe_dict()
    assert first_rerun(recipe, edited(recipe, ("verify", "min_miou"), 0.2)) == "verify"
    recipe["stages"][5]["verify"]["max_miou_drop"] = 0.1
    assert first_rerun(recipe, edited(recipe, ("verify", "max_miou_drop"), 0.2)) == "verify"


def test_the_run_name_is_not_part_of_any_key():
    recipe = auto_recipe()
    assert first_rerun(recipe, edited(recipe, ("name",), "renamed")) is None


def folder_recipe_keys(root):
    """The keys of a train-quantize-verify recipe on the folder dataset at `root`, and a function
    that computes them again from the files as they are then."""
    from edgeseg.data import data_fingerprint
    from tests.helpers import make_split

    make_split(root, "train", ["a", "b", "c"], num_classes=3)
    make_split(root, "val", ["d"], num_classes=3)
    recipe = tiny_recipe_dict(
        data={"format": "folder", "root": str(root), "classes": ["x", "y", "z"], "input_size": [32, 32], "batch_size": 2}
    )
    del recipe["student"]
    recipe["stages"] = [{"train": {"epochs": 1}}, {"quantize": {}}, {"verify": {}}]
    loaded = parse_recipe(recipe)
    return lambda: stage_keys(loaded, data_fingerprint(loaded.data))


def test_relabelling_or_removing_a_data_file_changes_every_key(tmp_path):
    """Issue: `--resume` reused train and quantize after every label was edited and an image removed."""
    import os

    from tests.helpers import striped_label, write_label

    keys = folder_recipe_keys(tmp_path / "ds")
    before = keys()
    label = tmp_path / "ds" / "train" / "labels" / "a.png"
    modified = label.stat()
    write_label(label, striped_label(3)[:, ::-1])  # the bands in the other order
    os.utime(label, ns=(modified.st_atime_ns, modified.st_mtime_ns))  # and the old time: the content counts
    relabelled = keys()
    (tmp_path / "ds" / "train" / "images" / "c.png").unlink()
    (tmp_path / "ds" / "train" / "labels" / "c.png").unlink()
    removed = keys()
    assert all(a != b for a, b in zip(before, relabelled)) and all(a != b for a, b in zip(relabelled, removed))


def test_the_same_files_with_new_modification_times_keep_every_key(tmp_path):
    """A dataset extracted again (a new machine, a restored cache) gives its files new times; the
    runs made on it must still resume."""
    import os

    keys = folder_recipe_keys(tmp_path / "ds")
    before = keys()
    for file in (tmp_path / "ds").rglob("*.png"):
        os.utime(file, ns=(file.stat().st_atime_ns, file.stat().st_mtime_ns + 10**12))
    assert keys() == before


def test_replacing_the_teacher_file_changes_every_key(tmp_path):
    from tests.helpers import write_yaml

    teacher = tmp_path / "teacher.keras"
    teacher.write_bytes(b"one")
    recipe = tiny_recipe_dict(teacher={"path": str(teacher)}, stages=[{"quantize": {}}, {"verify": {}}])
    del recipe["student"]
    path = write_yaml(tmp_path / "r.yaml", recipe)
    from edgeseg.recipe import load_recipe

    before = stage_keys(load_recipe(path))
    teacher.write_bytes(b"other")
    assert all(a != b for a, b in zip(before, stage_keys(load_recipe(path))))
