"""The Pareto frontier of a search: int8 mIoU against latency and against file size, with the naive
family (a benchmark of zoo models trained by hand) on the same axes.

Example:
    >>> rows = [{"int8_miou": 0.5, "latency_ms": 2.0}, {"int8_miou": 0.4, "latency_ms": 3.0},
    ...         {"int8_miou": 0.45, "latency_ms": 1.0}]
    >>> [row["latency_ms"] for row in pareto_front(rows, "latency_ms")]
    [1.0, 2.0]
"""

from pathlib import Path

from edgeseg.benchmark import NAIVE
from edgeseg.markdown import table_head

LABEL_POINTS = 7  # font size of the naive models' labels on the frontier plot
LABEL_OFFSET = (4, -LABEL_POINTS - 1)  # points right of and below each naive model's marker


def pareto_front(rows: list[dict], axis: str) -> list[dict]:
    """The rows no other row beats on both counts (higher int8 mIoU, lower `axis`), by `axis`;
    rows without a mIoU (never trained) are left out."""
    scored = sorted(
        (row for row in rows if row.get("int8_miou") is not None and row.get(axis) is not None),
        key=lambda row: (row[axis], -row["int8_miou"]),
    )
    front, best = [], -1.0
    for row in scored:
        if row["int8_miou"] > best:
            front.append(row)
            best = row["int8_miou"]
    return front


def versus_naive(frontier: dict[str, list[dict]], family: list[dict]) -> list[dict]:
    """Each naive model against edgeseg's `frontier` (`pareto_front` of the finalists by axis) at its
    cost: on each axis, the best finalist no slower (`latency_ms`) or no larger (`bytes`), which is
    the frontier's last point within the naive model's cost, and its lead in mIoU points; None on an
    axis where no finalist is that fast or small (the frontier does not cover that point)."""
    rows = []
    for naive in family:
        row = {"label": naive["label"], "int8_miou": naive["int8_miou"]}
        for axis in ("latency_ms", "bytes"):
            best = next((point for point in reversed(frontier[axis]) if point[axis] <= naive[axis]), None)
            row[axis] = (
                None
                if best is None
                else {
                    "finalist": best["label"],
                    "int8_miou": best["int8_miou"],
                    "points": round(100 * (best["int8_miou"] - naive["int8_miou"]), 2),
                }
            )
        rows.append(row)
    return rows


def naive_points(benchmarks: list[dict]) -> list[dict]:
    """The naive arms of benchmark.json files (tools/benchmark.py; arms `naive`, `naive-<model>`,
    edgeseg's own arms left out): mean int8 mIoU, size, and one of the arm's int8 files
    (`model_path`), which the search times beside its finalists. Raises FileNotFoundError when that
    file is gone, ValueError when a benchmark has no naive arm or two name the same one."""
    points: dict[str, dict] = {}
    for number, benchmark in enumerate(benchmarks, 1):
        arms = [arm for arm in benchmark["arms"] if arm == NAIVE or arm.startswith(f"{NAIVE}-")]
        if not arms:
            raise ValueError(f"benchmark {number} has no naive arm (it ran with --no-naive?): {', '.join(benchmark['arms'])}")
        for arm in arms:
            if arm in points:
                raise ValueError(f"arm {arm} is in more than one benchmark")
            # Every seed's file has the same architecture, so the same latency: one is timed.
            model_path = Path(next(iter(benchmark["runs"][arm].values()))["model_path"])
            if not model_path.is_file():
                raise FileNotFoundError(f"arm {arm}: no int8 file at {model_path}")
            points[arm] = {
                "label": arm,
                "int8_miou": benchmark["arms"][arm]["int8_miou"]["mean"],
                "bytes": benchmark["arms"][arm]["bytes"]["mean"],
                "model_path": str(model_path),
            }
    return list(points.values())


def _coordinates(rows: list[dict], axis: str, scale: float) -> tuple[list[float], list[float]]:
    """The rows' `axis` values times `scale`, and their int8 mIoU: a plot's x and y."""
    return [row[axis] * scale for row in rows], [row["int8_miou"] for row in rows]


def _latency_limit(result: dict) -> float | None:
    """The budget's latency limit in ms: `latency_ms`, or `latency_vs_recipe` times the reference's, the lower."""
    budget = result["budget"]
    limits = [budget["latency_ms"]]
    if budget.get("latency_vs_recipe") is not None:
        limits.append(budget["latency_vs_recipe"] * result["reference"]["latency_ms"])
    return min((limit for limit in limits if limit is not None), default=None)


def plot_frontier(result: dict, path: Path) -> Path:
    """mIoU vs latency and mIoU vs size: every trained trial (proxy schedule), the finalists (full
    schedule), each frontier, the naive family (`result["naive"]`), and the chosen model."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from edgeseg.files import atomic_path
    from edgeseg.plots import annotate_apart

    threads, family = str(result["budget"]["threads"]), result["naive"]
    figure, axes = plt.subplots(1, 2, figsize=(12, 4.6))
    for plot, (axis, title, scale) in zip(
        axes, (("latency_ms", f"latency, ms ({threads} threads)", 1.0), ("bytes", "int8 file as converted, KiB", 1 / 1024))
    ):
        trials = [row for row in result["trials"] if row.get("int8_miou") is not None]
        plot.scatter(
            *_coordinates(trials, axis, scale),
            facecolors="none",
            edgecolors="tab:blue",
            label="trials (proxy schedule)",
        )
        finalists = result["finalists"]
        plot.scatter(
            *_coordinates(finalists, axis, scale),
            color="tab:blue",
            label="finalists (full schedule)",
        )
        front = pareto_front(finalists, axis)
        plot.plot(*_coordinates(front, axis, scale), color="tab:blue")
        if family:
            naive_front = pareto_front(family, axis)
            plot.scatter(
                *_coordinates(family, axis, scale),
                marker="s",
                color="tab:gray",
                label="naive family",
            )
            plot.plot(*_coordinates(naive_front, axis, scale), color="tab:gray", linestyle="--")
        chosen = result["chosen"]
        plot.scatter([chosen[axis] * scale], [chosen["int8_miou"]], marker="*", s=220, color="tab:red", label="chosen", zorder=5)
        limit = result["budget"]["size_kb"] if axis == "bytes" else _latency_limit(result)
        if limit is not None:
            plot.axvline(limit, color="tab:red", linestyle=":", label="budget")
        labels = [(row["label"], row[axis] * scale, row["int8_miou"]) for row in family]
        annotate_apart(plot, labels, LABEL_POINTS, LABEL_OFFSET)
        plot.set_xlabel(title)
        plot.set_ylabel("int8 val mIoU")
        plot.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    figure.suptitle(f"search {result['recipe']}: int8 mIoU against latency and size")
    figure.tight_layout()
    with atomic_path(path) as temporary:
        figure.savefig(temporary, dpi=110, format="png")
    plt.close(figure)
    return path


def search_markdown(result: dict) -> str:
    """search.md: the chosen model, the finalists, the frontier, every trial."""
    chosen, threads, reference = result["chosen"], str(result["budget"]["threads"]), result["reference"]

    def latency(ms: float) -> str:
        return f"{ms:.2f} ms ({ms / reference['latency_ms']:.2f}x)"

    limits = ", ".join(f"{key} {value}" for key, value in result["budget"].items() if value is not None and key != "threads")
    lines = [
        f"# Search `{result['recipe']}`",
        "",
        f"Budget: {limits or 'none'} (latency at {threads} threads).",
        "",
        f"Latencies as a multiple (x) of the recipe's own model's, untrained: {reference['label']}.",
        "",
        f"Chosen: **{chosen['label']}**: int8 val mIoU {chosen['int8_miou']:.4f}, {latency(chosen['latency_ms'])}, "
        f"{chosen['bytes'] / 1024:.1f} KiB int8 file, {chosen['export_bytes'] / 1024:.1f} KiB with edgeseg's metadata "
        f"(exported beside this file; its run: `{chosen['run_dir']}`).",
        "",
        "Sizes below are the int8 file as converted, without the metadata, for the trials, the finalists and the "
        "naive family alike; a size budget is judged on the exported file.",
        "",
        "![frontier](frontier.png)",
        "",
        "## Finalists (full schedule, measured again)",
        "",
        f"Latency of the finalists{' and of the naive family' if result['naive'] else ''}: {result['latency_timing']}.",
        "",
        *table_head("trial", "candidate", "int8 mIoU", "proxy int8 mIoU", "latency", "file"),
    ]
    lines += [
        f"| {row['trial']} | {row['label']} | {row['int8_miou']:.4f} | {row['proxy_int8_miou']:.4f} | "
        f"{latency(row['latency_ms'])} | {row['bytes'] / 1024:.1f} KiB |"
        for row in result["finalists"]
    ]
    for axis, title in (("latency_ms", "latency"), ("bytes", "size")):
        lines += [
            "",
            f"Frontier against {title}: "
            + ", ".join(f"{row['label']} ({row['int8_miou']:.4f})" for row in result["frontier"][axis]),
        ]
    if result["naive"]:
        lines += [
            "",
            "## Naive family (benchmark, cross-entropy and default PTQ)",
            "",
            "Beside each naive model, the best finalist no slower and the best no larger, with its lead in mIoU "
            "points (the naive figure is the mean of its benchmark's seeds, a finalist's one run's): "
            + _coverage(result["versus_naive"]),
            "",
            *table_head("model", "int8 mIoU", "latency", "file", "best finalist no slower", "best finalist no larger"),
        ]
        lines += [
            f"| {row['label']} | {row['int8_miou']:.4f} | {latency(row['latency_ms'])} | {row['bytes'] / 1024:.1f} KiB | "
            f"{_lead(versus['latency_ms'])} | {_lead(versus['bytes'])} |"
            for row, versus in zip(result["naive"], result["versus_naive"], strict=True)
        ]
    lines += [
        "",
        "## Trials",
        "",
        *table_head("trial", "candidate", "outcome", "int8 mIoU (proxy)", "latency", "file"),
    ]
    for row in result["trials"]:
        outcome = _trial_outcome(row)
        if row.get("repeat_of") is not None:
            outcome = f"repeat of trial {row['repeat_of']}: {outcome}"
        miou = "" if row["int8_miou"] is None else f"{row['int8_miou']:.4f}"
        timed = "" if row["latency_ms"] is None else latency(row["latency_ms"])
        size = "" if row["bytes"] is None else f"{row['bytes'] / 1024:.1f} KiB"
        lines.append(f"| {row['trial']} | {row['label']} | {outcome} | {miou} | {timed} | {size} |")
    return "\n".join(lines) + "\n"


def _lead(versus: dict | None) -> str:
    """A finalist's lead over a naive model in search.md, or why there is none."""
    if versus is None:
        return "none (not covered)"
    return f"{versus['finalist']} {versus['int8_miou']:.4f} ({versus['points']:+.2f})"


def _coverage(versus: list[dict]) -> str:
    """One sentence: on how many naive models' latencies the frontier reaches, and above how many it lies."""
    covered = [row for row in versus if row["latency_ms"] is not None]
    above = [row for row in covered if row["latency_ms"]["points"] > 0]
    return (
        f"the frontier reaches the latency of {len(covered)} of {len(versus)} naive models "
        f"and lies above {len(above)} of those {len(covered)}."
    )


def _trial_outcome(row: dict) -> str:
    """A trial's outcome in `search.md`: trained, over budget (by what), failed (its error), or stopped by the pruner."""
    if row["state"] == "complete":
        return "trained"
    if row.get("over_budget"):
        return "over budget: " + ", ".join(row["over_budget"])
    if row.get("error"):
        return f"failed: {row['error']}"
    return "stopped early"
