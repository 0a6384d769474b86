"""Benchmarks: edgeseg recipes beside the naive path a user writes by hand, each run under several
seeds, compared as means and standard deviations.

Arms: `naive`, made from the first recipe, or from `naive_from` when given (its student
architecture trained with plain cross-entropy for the `distill` stage's epochs, learning rate and
schedule, then TensorFlow's documented full-integer PTQ: no teacher, no pruning, no clustering);
`naive-<model>` for each `family` member (another zoo model on the same naive path); then every
recipe given, unless `recipes_as_arms` is false. Each (arm, seed) is an ordinary run folder,
`<runs_dir>/<recipe name>-s<seed>`, the naive arms' recipes being named `<R>-naive` and
`<R>-naive-<model>` after the recipe R they come from: its report and artifacts stay, it can be
rerun alone, and a killed benchmark resumes where it stopped. Arms of one seed
share the stages whose resume key is the same (two recipes with the same teacher train it once).

All arms are scored by the same `verify` stage, in the LiteRT interpreter. Latency is measured
last, with every final `.tflite` timed alternately in one process (`edgeseg.tflite.alternating_latency`),
so a load on the machine hits them alike; it is reported in milliseconds and as a ratio to the
naive file.

A difference between two arms counts as real only when the difference of their means exceeds
their combined spread, the sum of their standard deviations over seeds (`differs`): with a few
seeds this is deliberately strict, and with one seed an arm has no spread, so nothing is judged.

Example::

    result = run_benchmark([load_recipe("recipes/camvid_full.yaml")], seeds=[0, 1, 2])
    result["arms"]["camvid_full"]["int8_miou"]["mean"]
"""

import logging
import statistics
import time
from pathlib import Path
from typing import TYPE_CHECKING

from edgeseg.errors import RecipeError
from edgeseg.files import write_json_atomic, write_text_atomic
from edgeseg.markdown import table_head
from edgeseg.recipe import (
    MODEL_CHANGING_STAGES,
    FitConfig,
    FolderData,
    QuantizeSettings,
    Recipe,
    SyntheticData,
    VerifySettings,
    model_from_name,
    parse_recipe,
    split_input_size,
)

if TYPE_CHECKING:
    from edgeseg.pipeline import RunResult

log = logging.getLogger("edgeseg")
NAIVE = "naive"
FIGURES = ("float_miou", "int8_miou", "int8_drop", "bytes", "gzip_bytes")


def naive_recipe(recipe: Recipe) -> Recipe:
    """The naive path as a recipe: the student trained with cross-entropy, quantized, verified."""
    stages = dict(recipe.stage_items())
    missing = [name for name in ("distill", "quantize", "verify") if name not in stages]
    if missing:
        raise RecipeError(
            f"benchmark: the recipe needs {', '.join(missing)} stages to compare against. Received: stages={list(stages)}"
        )
    dumped = recipe.model_dump(mode="json")
    quantize, verify = stages["quantize"], stages["verify"]
    assert isinstance(quantize, QuantizeSettings) and isinstance(verify, VerifySettings)  # by stage name
    fit = {name: getattr(stages["distill"], name) for name in FitConfig.model_fields}
    dumped.update(
        name=f"{recipe.name}-{NAIVE}",
        teacher=dumped.pop("student"),
        # The hand-written path converts with plain full-int8 PTQ, whatever repairs the recipe allows.
        stages=[
            {"train": fit},
            {"quantize": {"mode": "int8", "calibration_images": quantize.calibration_images}},
            {"verify": {"threads": verify.threads, "latency_runs": verify.latency_runs}},
        ],
    )
    return parse_recipe(dumped)


def family_member(recipe: Recipe, model: str) -> Recipe:
    """The naive path of another zoo model, named `arch-alpha` or `arch-alpha-osN` (e.g. `minimal-0.5-os32`),
    optionally at its own input size (`lraspp-0.35@144x192`; `benchmark_arms` holds it to
    `same_images`, so only on folder data): the naive family a search's frontier, or a
    lower-resolution model, is held against. Its run is named `<R>-naive-<model>`, `@` as `-`."""
    model_name, input_size = split_input_size(model)
    spec = model_from_name(model_name)
    dumped = naive_recipe(recipe).model_dump(mode="json")
    dumped["teacher"].update(arch=spec.arch, alpha=spec.alpha, output_stride=spec.output_stride)
    if input_size is not None:
        dumped["data"]["input_size"] = list(input_size)
    dumped["name"] = f"{recipe.name}-{NAIVE}-{model.replace('@', '-')}"
    return parse_recipe(dumped, source=f"benchmark family member {model}")


def with_seed(recipe: Recipe, seed: int) -> Recipe:
    """`recipe` under another seed, named `<name>-s<seed>` so each seed has its own run folder."""
    return parse_recipe({**recipe.model_dump(mode="json"), "seed": seed, "name": f"{recipe.name}-s{seed}"})


def same_images(data: SyntheticData | FolderData, other: SyntheticData | FolderData) -> bool:
    """Whether two data sections give the same images and labels: equal but for the input size,
    which for files only sets what the model sees (val is scored at each label's own resolution),
    so arms may feed their models other sizes. Synthetic images are drawn at the input size, so
    for them it counts too."""
    differing = set() if data.format == "synthetic" else {"input_size"}
    return data.model_dump(exclude=differing) == other.model_dump(exclude=differing)


def benchmark_arms(
    recipes: list[Recipe],
    naive: bool = True,
    family: tuple[str, ...] = (),
    recipes_as_arms: bool = True,
    naive_from: Recipe | None = None,
) -> dict[str, Recipe]:
    """The arms `run_benchmark` runs, by name: the naive arm and the family's, made from `naive_from`
    or else the first recipe, then the recipes themselves."""
    if naive_from is not None and not (naive or family):
        raise RecipeError("benchmark: --naive-from names the naive arms' recipe, but no naive arm is asked for (--no-naive)")
    naive_source = naive_from or recipes[0]
    family_arms = {f"{NAIVE}-{model}": family_member(naive_source, model) for model in family}
    for other in ([naive_from] if naive_from is not None else []) + list(family_arms.values()) + recipes[1:]:
        if not same_images(other.data, recipes[0].data):
            raise RecipeError(
                f"benchmark: {other.name!r} must have the data section of {recipes[0].name!r} (its input_size aside), "
                "so that every arm trains and scores on the same images"
            )
    arms = {NAIVE: naive_recipe(naive_source)} if naive else {}
    arms.update(family_arms)
    for recipe in recipes if recipes_as_arms else []:
        if recipe.name in arms:
            raise RecipeError(f"benchmark: two arms are named {recipe.name!r}; give each recipe its own name")
        arms[recipe.name] = recipe
    if not arms:
        raise RecipeError("benchmark: no arm to run: --no-naive and --naive-only leave none; add --family or drop one of them")
    return arms


def run_benchmark(
    recipes: list[Recipe],
    seeds: list[int],
    runs_dir: str | Path = "runs",
    threads: tuple[int, ...] = (1, 2),
    naive: bool = True,
    family: tuple[str, ...] = (),
    recipes_as_arms: bool = True,
    naive_from: Recipe | None = None,
) -> dict:
    """Runs every arm under every seed, times the final files, and writes
    `<runs_dir>/<first recipe>-benchmark/benchmark.{json,md}`; returns what it wrote. `family`
    adds naive arms of other zoo models (`family_member`), e.g. for a search's frontier; without
    `recipes_as_arms`, the recipes only give the naive arms their settings. The naive arms come
    from `naive_from` when given (a recipe with a distill stage, for arms that have none, such as
    a model trained alone and channel-pruned), else from the first recipe."""
    from edgeseg.pipeline import run
    from edgeseg.tflite import alternating_latency

    arms = benchmark_arms(recipes, naive, family, recipes_as_arms, naive_from)
    runs_dir = Path(runs_dir)
    per_seed: dict[str, dict[int, dict]] = {arm: {} for arm in arms}
    total, started = len(arms) * len(seeds), time.perf_counter()
    for seed_index, seed in enumerate(seeds):
        done_this_seed: list[Path] = []
        for arm_index, (arm, recipe) in enumerate(arms.items()):
            log.info(
                "benchmark: run %d of %d: %s, seed %d (%.0f min so far)",
                seed_index * len(arms) + arm_index + 1,
                total,
                arm,
                seed,
                (time.perf_counter() - started) / 60,
            )
            seeded = with_seed(recipe, seed)
            run_started = time.perf_counter()
            result = run(seeded, runs_dir, resume=True, reuse_from=done_this_seed)
            per_seed[arm][seed] = run_figures(result, time.perf_counter() - run_started)
            done_this_seed.append(result.run_dir)
    files = {f"{arm}-s{seed}": Path(figures["model_path"]) for arm, runs in per_seed.items() for seed, figures in runs.items()}
    log.info("benchmark: timing %d files alternately at %s thread(s)", len(files), ", ".join(map(str, threads)))
    latency = alternating_latency({name: path.read_bytes() for name, path in files.items()}, threads)
    for arm, runs in per_seed.items():
        for seed, figures in runs.items():
            figures["latency_ms"] = latency[f"{arm}-s{seed}"]
    arm_summaries = {arm: summarize(list(runs.values())) for arm, runs in per_seed.items()}
    benchmark: dict = {
        "recipes": [recipe.name for recipe in recipes],
        "naive_from": (naive_from or recipes[0]).name,
        "seeds": list(seeds),
        "classes": list(recipes[0].data.classes),
        "threads": [str(count) for count in threads],
        "runs": {arm: {str(seed): figures for seed, figures in runs.items()} for arm, runs in per_seed.items()},
        "arms": arm_summaries,
        "comparisons": comparisons(arm_summaries),
    }
    out_dir = runs_dir / f"{recipes[0].name}-benchmark"
    write_json_atomic(out_dir / "benchmark.json", benchmark)
    write_text_atomic(out_dir / "benchmark.md", benchmark_markdown(benchmark))
    benchmark["written_to"] = str(out_dir)
    return benchmark


def run_figures(result: "RunResult", seconds: float) -> dict:
    """What the benchmark keeps of one run: the verified float and int8 figures, the val mIoU after
    each model-changing stage, sizes, stage seconds."""
    verify, quantize = result.required_record("verify"), result.required_record("quantize")
    # Absolute, so a benchmark.json read from another directory (`edgeseg search --naive`) finds them.
    run_dir = Path(result.run_dir).resolve()
    return {
        "run_dir": str(run_dir),
        "model_path": str(run_dir / quantize["artifact"]),
        "float_miou": verify["float"]["miou"],
        "int8_miou": verify["quantized"]["miou"],
        "int8_drop": verify["miou_drop"],
        "resolution": verify["quantized"]["resolution"],
        "int8_per_class_iou": verify["quantized"]["per_class_iou"],
        "stage_val_miou": {r["stage"]: r["val_miou"] for r in result.records if r["stage"] in MODEL_CHANGING_STAGES},
        "bytes": verify["bytes"],
        "gzip_bytes": verify["gzip_bytes"],
        "stage_seconds": {r["stage"]: r["seconds"] for r in result.records},
        "wall_seconds": round(seconds, 1),
    }


def spread(values: list[float]) -> dict:
    """Mean, sample standard deviation (0 for one value) and the values themselves."""
    return {"mean": statistics.fmean(values), "std": statistics.stdev(values) if len(values) > 1 else 0.0, "values": list(values)}


def summarize(runs: list[dict]) -> dict:
    """An arm's figures over its seeds: each as `spread`, per stage and per thread count too."""
    summary = {figure: spread([run[figure] for run in runs]) for figure in FIGURES}
    summary["stage_val_miou"] = {
        stage: spread([run["stage_val_miou"][stage] for run in runs]) for stage in runs[0]["stage_val_miou"]
    }
    summary["latency_ms"] = {threads: spread([run["latency_ms"][threads] for run in runs]) for threads in runs[0]["latency_ms"]}
    return summary


JUDGEMENT = {True: "yes", False: "no", None: "not judged: one seed"}


def differs(a: dict, b: dict) -> bool | None:
    """Whether two `spread`s differ by more than their combined spread (the sum of their standard
    deviations): the rule a benchmark claim must pass. None when either holds a single value: one
    run's standard deviation is unknown, not zero, so its difference is not judged.

    Example:
        >>> differs({"mean": 0.52, "std": 0.01, "values": [0.51, 0.53]}, {"mean": 0.50, "std": 0.005, "values": [0.5, 0.5]})
        True
        >>> differs({"mean": 0.52, "std": 0.015, "values": [0.5, 0.53]}, {"mean": 0.50, "std": 0.01, "values": [0.5, 0.5]})
        False
        >>> differs({"mean": 0.52, "std": 0.0, "values": [0.52]}, {"mean": 0.50, "std": 0.0, "values": [0.5]}) is None
        True
    """
    if min(len(a["values"]), len(b["values"])) < 2:
        return None
    return abs(a["mean"] - b["mean"]) > a["std"] + b["std"]


def comparisons(arms: dict) -> list[dict]:
    """The comparisons every benchmark reports, each with its difference of means and verdict:
    each arm's int8 mIoU against the naive file's; where an arm distills, its distilled student
    against the naive (cross-entropy) float model, and its int8 file against its distilled student."""
    rows = []

    def compare(what: str, a: dict, b: dict) -> None:
        rows.append(
            {
                "comparison": what,
                "a": a,
                "b": b,
                "difference": a["mean"] - b["mean"],
                "combined_spread": a["std"] + b["std"],
                "larger_than_spread": differs(a, b),
            }
        )

    naive = arms.get(NAIVE)
    for arm, summary in arms.items():
        if arm == NAIVE:
            continue
        if naive is not None:
            compare(f"{arm} int8 vs naive int8 (mIoU)", summary["int8_miou"], naive["int8_miou"])
        distilled = summary["stage_val_miou"].get("distill")
        if distilled is not None and naive is not None:
            compare(f"{arm} distilled student vs naive cross-entropy student (float mIoU)", distilled, naive["float_miou"])
        if distilled is not None:
            compare(f"{arm} int8 vs its distilled student (mIoU)", summary["int8_miou"], distilled)
    return rows


def benchmark_markdown(result: dict) -> str:
    """The benchmark as Markdown: arms (mean ± std over seeds), comparisons, every seed's figures."""
    threads = result["threads"]
    naive_latency = result["arms"].get(NAIVE, {}).get("latency_ms")
    lines = [
        f"## {' + '.join(result['recipes'])}: {len(result['seeds'])} seed(s) ({', '.join(map(str, result['seeds']))})",
        "",
        *table_head(
            "arm", "float mIoU", "int8 mIoU", "int8 drop", "int8 file", "int8 gzip", *(f"latency {t} thr" for t in threads)
        ),
    ]
    for arm, summary in result["arms"].items():
        latency = []
        for t in threads:
            cell = _pm(summary["latency_ms"][t], "{:.2f}") + " ms"
            if naive_latency and arm != NAIVE:
                cell += f" ({summary['latency_ms'][t]['mean'] / naive_latency[t]['mean']:.2f}x)"
            latency.append(cell)
        lines.append(
            f"| {arm} | {_pm(summary['float_miou'])} | {_pm(summary['int8_miou'])} | "
            f"{_pm(summary['int8_drop'], '{:+.4f}')} | {summary['bytes']['mean'] / 1024:.1f} KiB | "
            f"{summary['gzip_bytes']['mean'] / 1024:.1f} KiB | " + " | ".join(latency) + " |"
        )
    lines += [
        "",
        "Mean ± sample standard deviation over seeds; mIoU on the val split; latency: the files timed "
        "alternately in one process, median ms (ratio to the naive file).",
    ]
    if result["comparisons"]:
        lines += ["", *table_head("comparison", "difference of means", "combined spread", "larger than the spread")]
        lines += [
            f"| {row['comparison']} | {row['difference']:+.4f} | {row['combined_spread']:.4f} | "
            f"{JUDGEMENT[row['larger_than_spread']]} |"
            for row in result["comparisons"]
        ]
    stages = sorted(
        {stage for summary in result["arms"].values() for stage in summary["stage_val_miou"]}, key=MODEL_CHANGING_STAGES.index
    )
    lines += [
        "",
        *table_head("arm", "seed", *(f"{stage} val" for stage in stages), "float", "int8", "wall"),
    ]
    for arm, runs in result["runs"].items():
        for seed, run in runs.items():
            cells = [f"{run['stage_val_miou'][s]:.4f}" if s in run["stage_val_miou"] else "" for s in stages]
            lines.append(
                f"| {arm} | {seed} | " + " | ".join(cells) + f" | {run['float_miou']:.4f} | {run['int8_miou']:.4f} "
                f"| {run['wall_seconds'] / 60:.1f} min |"
            )
    return "\n".join(lines) + "\n"


def _pm(value: dict, spec: str = "{:.4f}") -> str:
    return f"{spec.format(value['mean'])} ± {spec.format(value['std']).lstrip('+')}"
