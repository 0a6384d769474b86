"""The CamVid benchmark's naive path and its targets, on recipes and figures made here (no training)."""

import pytest

from edgeseg.benchmark import _targets, benchmark_markdown, naive_recipe
from edgeseg.errors import RecipeError
from edgeseg.recipe import parse_recipe
from tests.helpers import tiny_recipe_dict


def path_figures(float_miou, int8_miou, size, gzip_size, latency, gzip_floor=None):
    return {
        "float_miou": float_miou, "int8_miou": int8_miou, "int8_drop": float_miou - int8_miou, "resolution": "label",
        "int8_per_class_iou": [0.5, None], "float_per_class_iou": [0.5, None], "bytes": size, "gzip_bytes": gzip_size,
        "gzip_floor_bytes": gzip_floor,
        "latency_ms": {"1": latency, "2": latency / 2}, "stage_seconds": {"train": 1.0, "quantize": 2.0},
        "wall_seconds": 60.0,
    }


def test_naive_path_trains_the_student_like_distill_without_a_teacher():
    recipe = parse_recipe(tiny_recipe_dict())
    naive = naive_recipe(recipe)
    assert naive.name == "tiny-naive" and naive.student is None
    assert naive.teacher == recipe.student
    stages = dict(naive.stage_items())
    assert list(stages) == ["train", "quantize", "verify"]
    distill = dict(recipe.stage_items())["distill"]
    assert (stages["train"].epochs, stages["train"].lr) == (distill.epochs, distill.lr)
    assert stages["quantize"] == dict(recipe.stage_items())["quantize"]
    assert stages["verify"].max_miou_drop is None and stages["verify"].min_miou is None, "no gates on the baseline"
    assert naive.data == recipe.data and naive.seed == recipe.seed


def test_a_recipe_without_distill_cannot_be_benchmarked():
    recipe = tiny_recipe_dict(stages=[{"train": {}}, {"quantize": {}}, {"verify": {}}])
    del recipe["student"]
    with pytest.raises(RecipeError, match="needs distill"):
        naive_recipe(parse_recipe(recipe))


def test_targets_are_judged_on_the_measured_figures():
    naive = path_figures(0.40, 0.39, 700_000, 600_000, 2.0)
    met = _targets(naive, path_figures(0.46, 0.458, 500_000, 200_000, 1.9))
    assert [target["met"] for target in met] == [True, True, True, True, True]
    missed = _targets(naive, path_figures(0.44, 0.43, 650_000, 300_000, 2.1, gzip_floor=150_000))
    assert missed[3]["measured"] == "50.0% (floor 25.0%: the same file with its pruned and clustered kernels all zeros)"
    assert [target["met"] for target in missed] == [False, False, False, False, False]
    markdown = benchmark_markdown({"recipe": "tiny", "classes": ["sky", "road"], "targets": missed,
                                   "paths": {"naive": naive, "edgeseg": path_figures(0.44, 0.43, 650_000, 300_000, 2.1)}})
    assert "| naive | 0.4000 | 0.3900 |" in markdown and "| road | absent | absent |" in markdown
    assert markdown.count("| no |") == 5
