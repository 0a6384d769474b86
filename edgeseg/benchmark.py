"""An edgeseg recipe side by side with the naive path a user writes by hand, on the same data and seed.

The naive path trains the recipe's student architecture with plain cross-entropy for as many
epochs (same learning rate and schedule) as the recipe's `distill` stage, then converts it with
TensorFlow's documented full-integer PTQ (DEFAULT optimizations, a representative dataset of the
same number of train images, int8 builtins, uint8 input): no teacher, no pruning, no clustering.
Both are scored by the same `verify` stage, with the interpreter, at label resolution.

Example:
    >>> result = run_benchmark(load_recipe("recipes/camvid_quick.yaml"))
    >>> [target["met"] for target in result["targets"]]
"""

import json
import time
from pathlib import Path

from edgeseg.errors import RecipeError
from edgeseg.files import write_json_atomic, write_text_atomic
from edgeseg.recipe import FitConfig, parse_recipe

SIZE_LIMIT_BYTES = 600_000
GZIP_RATIO_LIMIT = 0.40
MIOU_GAIN_TARGET = 0.05
INT8_DROP_LIMIT = 0.005


def naive_recipe(recipe):
    """The naive path as a recipe: the student trained with cross-entropy, quantized, verified."""
    stages = dict(recipe.stage_items())
    missing = [name for name in ("distill", "quantize", "verify") if name not in stages]
    if missing:
        raise RecipeError(f"benchmark: the recipe needs {', '.join(missing)} stages to compare against. "
                          f"Received: stages={list(stages)}")
    dumped = recipe.model_dump(mode="json")
    fit = {name: getattr(stages["distill"], name) for name in FitConfig.model_fields}
    dumped.update(
        name=f"{recipe.name}-naive",
        teacher=dumped.pop("student"),
        # The hand-written path converts with plain full-int8 PTQ, whatever repairs the recipe allows.
        stages=[{"train": fit}, {"quantize": {"mode": "int8", "calibration_images": stages["quantize"].calibration_images}},
                {"verify": {"threads": stages["verify"].threads, "latency_runs": stages["verify"].latency_runs}}],
    )
    return parse_recipe(dumped)


def run_benchmark(recipe, runs_dir: str | Path = "runs") -> dict:
    """Runs the naive path, then the recipe, and writes `<runs_dir>/<name>-benchmark/benchmark.{json,md}`."""
    from edgeseg.pipeline import run

    paths = {}
    for label, path_recipe in (("naive", naive_recipe(recipe)), ("edgeseg", recipe)):
        started = time.perf_counter()
        result = run(path_recipe, runs_dir)
        paths[label] = _path_summary(result, time.perf_counter() - started)
    comparison = {
        "recipe": recipe.name,
        "classes": list(recipe.data.classes),
        "paths": paths,
        "targets": _targets(paths["naive"], paths["edgeseg"]),
    }
    out_dir = Path(runs_dir) / f"{recipe.name}-benchmark"
    write_json_atomic(out_dir / "benchmark.json", comparison)
    write_text_atomic(out_dir / "benchmark.md", benchmark_markdown(comparison))
    comparison["written_to"] = str(out_dir)
    return comparison


def _path_summary(result, seconds: float) -> dict:
    verify = result.record("verify")
    return {
        "run_dir": str(result.run_dir),
        "float_miou": verify["float"]["miou"],
        "int8_miou": verify["quantized"]["miou"],
        "int8_drop": verify["miou_drop"],
        "resolution": verify["quantized"]["resolution"],
        "int8_per_class_iou": verify["quantized"]["per_class_iou"],
        "float_per_class_iou": verify["float"]["per_class_iou"],
        "bytes": verify["bytes"],
        "gzip_bytes": verify["gzip_bytes"],
        "gzip_floor_bytes": result.record("quantize").get("kernels", {}).get("gzip_breakdown", {}).get("floor"),
        "latency_ms": {threads: entry["median_ms"] for threads, entry in verify["latency"].items()},
        "stage_seconds": {record["stage"]: record["seconds"] for record in result.records},
        "wall_seconds": round(seconds, 1),
    }


def _targets(naive: dict, ours: dict) -> list[dict]:
    """The CamVid issue's targets, each with the measured figure and whether it is met."""
    latency = {
        threads: ours["latency_ms"][threads] <= naive["latency_ms"][threads]
        for threads in ours["latency_ms"] if threads in naive["latency_ms"]
    }
    return [
        {"target": f"edgeseg int8 mIoU >= naive float mIoU + {MIOU_GAIN_TARGET:.2f}",
         "measured": f"{ours['int8_miou']:.4f} vs {naive['float_miou']:.4f} + {MIOU_GAIN_TARGET:.2f}",
         "met": ours["int8_miou"] >= naive["float_miou"] + MIOU_GAIN_TARGET},
        {"target": f"edgeseg int8 drop vs its float student <= {INT8_DROP_LIMIT}",
         "measured": f"{ours['int8_drop']:+.4f}", "met": ours["int8_drop"] <= INT8_DROP_LIMIT},
        {"target": f"edgeseg int8 file <= {SIZE_LIMIT_BYTES:,} bytes",
         "measured": f"{ours['bytes']:,} bytes", "met": ours["bytes"] <= SIZE_LIMIT_BYTES},
        {"target": f"edgeseg int8 gzip <= {GZIP_RATIO_LIMIT:.0%} of the naive int8 gzip",
         "measured": f"{ours['gzip_bytes'] / naive['gzip_bytes']:.1%}" + _floor_note(ours, naive),
         "met": ours["gzip_bytes"] <= GZIP_RATIO_LIMIT * naive["gzip_bytes"]},
        {"target": "edgeseg latency <= naive latency (median, same input size)",
         "measured": ", ".join(f"{t} thread(s): {ours['latency_ms'][t]:.2f} vs {naive['latency_ms'][t]:.2f} ms"
                               for t in latency),
         "met": bool(latency) and all(latency.values())},
    ]


def _floor_note(ours: dict, naive: dict) -> str:
    if ours["gzip_floor_bytes"] is None:
        return ""
    return (f" (floor {ours['gzip_floor_bytes'] / naive['gzip_bytes']:.1%}: the same file with its pruned and "
            "clustered kernels all zeros)")


def benchmark_markdown(comparison: dict) -> str:
    """The comparison as Markdown tables: headline figures, per-class IoU, stage times, targets."""
    naive, ours = comparison["paths"]["naive"], comparison["paths"]["edgeseg"]
    threads = sorted(set(naive["latency_ms"]) & set(ours["latency_ms"]), key=int)
    lines = [
        f"## {comparison['recipe']}: naive path vs edgeseg", "",
        "| path | float mIoU | int8 mIoU | int8 drop | int8 file | int8 gzip | "
        + " | ".join(f"latency {t} thr" for t in threads) + " | wall |",
        "|---|---|---|---|---|---|" + "---|" * len(threads) + "---|",
    ]
    for label, path in (("naive", naive), ("edgeseg", ours)):
        lines.append(
            f"| {label} | {path['float_miou']:.4f} | {path['int8_miou']:.4f} | {path['int8_drop']:+.4f} | "
            f"{path['bytes'] / 1024:.1f} KiB | {path['gzip_bytes'] / 1024:.1f} KiB | "
            + " | ".join(f"{path['latency_ms'][t]:.2f} ms" for t in threads)
            + f" | {path['wall_seconds'] / 60:.1f} min |"
        )
    lines += ["", f"mIoU at {ours['resolution']} resolution on the val split.", "",
              "| class | naive int8 IoU | edgeseg int8 IoU |", "|---|---|---|"]
    for name, naive_iou, our_iou in zip(comparison["classes"], naive["int8_per_class_iou"], ours["int8_per_class_iou"]):
        lines.append(f"| {name} | {_iou(naive_iou)} | {_iou(our_iou)} |")
    lines += ["", "| path | " + " | ".join(f"{stage} s" for stage in ours["stage_seconds"]) + " |",
              "|---|" + "---|" * len(ours["stage_seconds"])]
    for label, path in (("naive", naive), ("edgeseg", ours)):
        lines.append(f"| {label} | " + " | ".join(str(path["stage_seconds"].get(stage, "")) for stage in ours["stage_seconds"]) + " |")
    lines += ["", "| target | measured | met |", "|---|---|---|"]
    lines += [f"| {t['target']} | {t['measured']} | {'yes' if t['met'] else 'no'} |" for t in comparison["targets"]]
    return "\n".join(lines) + "\n"


def _iou(value) -> str:
    return "absent" if value is None else f"{value:.4f}"


def print_summary(comparison: dict) -> None:
    """What the benchmark tool prints: the Markdown tables, then where they were written."""
    print(benchmark_markdown(comparison))
    print(f"written to {comparison['written_to']}/benchmark.json and benchmark.md")
    print(json.dumps([t["met"] for t in comparison["targets"]]))
