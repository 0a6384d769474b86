"""The benchmark's naive arm, its statistics over seeds and its report, on recipes and figures made here (no training)."""

import pytest

from edgeseg.benchmark import benchmark_arms, benchmark_markdown, comparisons, family_member, naive_recipe, summarize
from edgeseg.errors import RecipeError
from edgeseg.recipe import parse_recipe
from tests.helpers import tiny_recipe_dict


def run_figures(float_miou, int8_miou, distilled=None, latency=2.0):
    stages = {"train": 0.3, **({"distill": distilled} if distilled is not None else {})}
    return {
        "float_miou": float_miou,
        "int8_miou": int8_miou,
        "int8_drop": float_miou - int8_miou,
        "bytes": 500_000,
        "gzip_bytes": 300_000,
        "stage_val_miou": stages,
        "latency_ms": {"1": latency, "2": latency / 2},
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


def test_arms_are_summarized_over_seeds_and_compared_by_the_spread_rule():
    naive = summarize([run_figures(0.50, 0.49), run_figures(0.52, 0.51), run_figures(0.51, 0.50)])
    assert naive["int8_miou"]["mean"] == pytest.approx(0.50) and naive["int8_miou"]["std"] == pytest.approx(0.01)
    assert naive["int8_miou"]["values"] == [0.49, 0.51, 0.50]
    distilled = summarize(
        [
            run_figures(0.55, 0.50, distilled=0.56),
            run_figures(0.56, 0.505, distilled=0.57),
            run_figures(0.57, 0.51, distilled=0.58),
        ]
    )
    rows = {row["comparison"].split(" (")[0]: row for row in comparisons({"naive": naive, "kd": distilled})}
    assert set(rows) == {
        "kd int8 vs naive int8",
        "kd distilled student vs naive cross-entropy student",
        "kd int8 vs its distilled student",
    }
    end_to_end = rows["kd int8 vs naive int8"]
    assert end_to_end["difference"] == pytest.approx(0.005) and not end_to_end["larger_than_spread"]
    student = rows["kd distilled student vs naive cross-entropy student"]
    assert student["difference"] == pytest.approx(0.06) and student["combined_spread"] == pytest.approx(0.02)
    assert student["larger_than_spread"]
    assert rows["kd int8 vs its distilled student"]["larger_than_spread"]


def test_one_seed_is_not_judged_by_the_spread_rule():
    arms = {"naive": summarize([run_figures(0.50, 0.49)]), "wide": summarize([run_figures(0.60, 0.59)])}
    (row,) = comparisons(arms)
    assert row["difference"] == pytest.approx(0.10) and row["larger_than_spread"] is None
    result = {
        "recipes": ["wide"],
        "seeds": [0],
        "threads": ["1", "2"],
        "runs": {arm: {"0": run_figures(0.5, 0.49)} for arm in arms},
        "arms": arms,
        "comparisons": [row],
    }
    assert "| wide int8 vs naive int8 (mIoU) | +0.1000 | 0.0000 | not judged: one seed |" in benchmark_markdown(result)


def test_the_report_shows_means_spreads_latency_ratios_and_every_seed():
    arms = {
        "naive": [run_figures(0.50, 0.49), run_figures(0.52, 0.51)],
        "kd": [run_figures(0.55, 0.54, distilled=0.56, latency=1.0), run_figures(0.57, 0.56, distilled=0.58, latency=1.0)],
    }
    result = {
        "recipes": ["kd"],
        "seeds": [0, 1],
        "threads": ["1", "2"],
        "runs": {arm: {str(seed): run for seed, run in enumerate(runs)} for arm, runs in arms.items()},
        "arms": {arm: summarize(runs) for arm, runs in arms.items()},
    }
    result["comparisons"] = comparisons(result["arms"])
    markdown = benchmark_markdown(result)
    assert "| naive | 0.5100 ± 0.0141 | 0.5000 ± 0.0141 |" in markdown
    assert "1.00 ± 0.00 ms (0.50x)" in markdown, "kd's latency as a ratio to the naive file's"
    assert "| kd | 1 | 0.3000 | 0.5800 | 0.5700 | 0.5600 | 1.0 min |" in markdown
    assert "| kd int8 vs naive int8 (mIoU) | +0.0500 | 0.0283 | yes |" in markdown


def test_a_family_member_is_the_naive_path_of_the_zoo_model_it_names():
    recipe = parse_recipe(tiny_recipe_dict())
    member = family_member(recipe, "minimal-0.5-os32")
    assert member.name == "tiny-naive-minimal-0.5-os32" and member.student is None
    assert (member.teacher.arch, member.teacher.alpha, member.teacher.output_stride) == ("minimal", 0.5, 32)
    assert dict(member.stage_items()).keys() == dict(naive_recipe(recipe).stage_items()).keys()
    assert family_member(recipe, "lraspp-0.75").teacher.output_stride == 16


def test_a_recipe_without_distill_is_an_arm_beside_the_naive_path_of_another_recipe():
    pruned = tiny_recipe_dict(name="pruned", stages=[{"train": {}}, {"prune_channels": {}}, {"quantize": {}}, {"verify": {}}])
    del pruned["student"]
    yardstick = parse_recipe(tiny_recipe_dict(name="yardstick"))
    arms = benchmark_arms([parse_recipe(pruned)], family=("minimal-0.5",), naive_from=yardstick)
    assert list(arms) == ["naive", "naive-minimal-0.5", "pruned"]
    assert arms["naive"] == naive_recipe(yardstick) and arms["naive-minimal-0.5"].name == "yardstick-naive-minimal-0.5"
    with pytest.raises(RecipeError, match="needs distill"):
        benchmark_arms([parse_recipe(pruned)])
    with pytest.raises(RecipeError, match="no naive arm is asked for"):
        benchmark_arms([parse_recipe(pruned)], naive=False, naive_from=yardstick)
    with pytest.raises(RecipeError, match="no arm to run"):
        benchmark_arms([yardstick], naive=False, recipes_as_arms=False)
    elsewhere = parse_recipe(tiny_recipe_dict(name="elsewhere", data={**tiny_recipe_dict()["data"], "num_classes": 5}))
    with pytest.raises(RecipeError, match="'elsewhere' must have the data section of 'pruned'"):
        benchmark_arms([parse_recipe(pruned)], naive_from=elsewhere)
    with pytest.raises(RecipeError, match="'elsewhere' must have the data section of 'pruned'"):
        benchmark_arms([parse_recipe(pruned), elsewhere], naive=False)


def test_arms_may_feed_other_input_sizes_of_the_same_files_but_not_of_synthetic_images(tmp_path):
    (tmp_path / "images").mkdir()
    (tmp_path / "labels").mkdir()
    files = {"format": "folder", "root": str(tmp_path), "train": {"images": "images", "labels": "labels"}}
    files = {**files, "val": {"images": "images", "labels": "labels"}, "classes": ["a", "b"]}
    synthetic = tiny_recipe_dict()["data"]

    def arm(name, data, input_size):
        recipe = tiny_recipe_dict(name=name, data={**data, "input_size": input_size}, stages=[{"train": {}}, {"quantize": {}}])
        del recipe["student"]
        return parse_recipe(recipe)

    arms = benchmark_arms([arm("wide", files, [32, 32]), arm("lowres", files, [48, 64])], naive=False)
    assert [recipe.data.input_size for recipe in arms.values()] == [(32, 32), (48, 64)]
    yardstick = parse_recipe(tiny_recipe_dict(name="yardstick", data={**files, "input_size": [32, 32]}))
    assert list(benchmark_arms([arm("lowres", files, [48, 64])], naive_from=yardstick)) == ["naive", "lowres"]
    with pytest.raises(RecipeError, match="'lowres' must have the data section of 'wide' \\(its input_size aside\\)"):
        benchmark_arms([arm("wide", synthetic, [32, 32]), arm("lowres", synthetic, [48, 64])], naive=False)


def test_a_family_member_may_have_its_own_input_size_of_the_same_files(tmp_path):
    (tmp_path / "images").mkdir()
    (tmp_path / "labels").mkdir()
    files = {"format": "folder", "root": str(tmp_path), "train": {"images": "images", "labels": "labels"}}
    files = {**files, "val": {"images": "images", "labels": "labels"}, "classes": ["a", "b"], "input_size": [32, 32]}
    recipe = parse_recipe(tiny_recipe_dict(name="yardstick", data=files))
    member = family_member(recipe, "lraspp-0.35@48x64")
    assert member.name == "yardstick-naive-lraspp-0.35-48x64" and member.data.input_size == (48, 64)
    assert member.data.model_dump(exclude={"input_size"}) == recipe.data.model_dump(exclude={"input_size"})
    assert list(benchmark_arms([recipe], family=("lraspp-0.35@48x64",), recipes_as_arms=False)) == [
        "naive",
        "naive-lraspp-0.35@48x64",
    ]
    with pytest.raises(RecipeError, match="lraspp-0.35@48: expected an input size HxW after '@'"):
        family_member(recipe, "lraspp-0.35@48")
    synthetic = parse_recipe(tiny_recipe_dict())
    with pytest.raises(
        RecipeError, match="'tiny-naive-lraspp-0.35-48x64' must have the data section of 'tiny' \\(its input_size aside\\)"
    ):
        benchmark_arms([synthetic], family=("lraspp-0.35@48x64",))


@pytest.mark.parametrize("name", ["minimal", "minimal-half", "minimal-0.5-32", "unet-0.5", "minimal-3.0", "lraspp-0.5-os12-x"])
def test_a_bad_family_member_name_is_one_line_with_the_expected_form(name):
    with pytest.raises(RecipeError) as caught:
        family_member(parse_recipe(tiny_recipe_dict()), name)
    assert str(caught.value) == (f"a zoo model name is arch-alpha or arch-alpha-osN, e.g. minimal-0.5-os32. Received: {name!r}")
