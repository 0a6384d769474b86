"""search.md from a search's result (no training): latencies as multiples of the recipe's own
model's, repeats named as such, each outcome in words."""

from edgeseg.search.frontier import pareto_front, search_markdown, versus_naive


def row(trial: int, label: str, miou: float | None, latency: float, **extra) -> dict:
    fields = {"trial": trial, "state": "complete", "label": label, "int8_miou": miou, "latency_ms": latency}
    return {**fields, "bytes": 400 * 1024, "run_dir": f"runs/trial-{trial:03d}", **extra}


def test_search_md_gives_latencies_against_the_reference_and_names_repeats():
    chosen = row(1, "wide", 0.31, 2.0, proxy_int8_miou=0.22, export_bytes=403 * 1024)
    result = {
        "recipe": "tiny",
        "budget": {"latency_vs_recipe": 1.05, "latency_ms": None, "size_kb": None, "threads": 2},
        "reference": {"label": "own", "latency_ms": 2.5},
        "chosen": chosen,
        "finalists": [chosen],
        "frontier": {"latency_ms": [chosen], "bytes": [chosen]},
        "naive": [],
        "latency_timing": "timed alternately",
        "trials": [
            row(0, "own", 0.21, 2.5),
            row(1, "wide", 0.22, 2.0),
            row(2, "wide", 0.22, 2.0, repeat_of=1),
            row(3, "deep", None, 2.4, state="fail", error="train: loss is NaN at epoch 2"),
            row(4, "slow", None, 4.0, state="pruned", over_budget=["latency 1.60 x the recipe's own model > 1.05"]),
            row(5, "weak", 0.1, 2.2, state="pruned"),
        ],
    }
    markdown = search_markdown(result)
    assert "Budget: latency_vs_recipe 1.05 (latency at 2 threads)." in markdown
    assert "Chosen: **wide**: int8 val mIoU 0.3100, 2.00 ms (0.80x), 400.0 KiB int8 file, 403.0 KiB with edgeseg's metadata" in (
        markdown
    )
    assert "| 0 | own | trained | 0.2100 | 2.50 ms (1.00x) | 400.0 KiB |" in markdown
    assert "| 2 | wide | repeat of trial 1: trained | 0.2200 | 2.00 ms (0.80x) | 400.0 KiB |" in markdown
    assert "| 3 | deep | failed: train: loss is NaN at epoch 2 |  | 2.40 ms (0.96x) |" in markdown
    assert "| 4 | slow | over budget: latency 1.60 x the recipe's own model > 1.05 |" in markdown
    assert "| 5 | weak | stopped early | 0.1000 |" in markdown


def test_each_naive_model_is_held_against_the_best_finalist_no_slower_and_no_larger():
    fast = row(1, "fast", 0.30, 1.5, bytes=300 * 1024)
    slow = row(2, "slow", 0.33, 2.4, bytes=500 * 1024)
    family = [
        {"label": "naive", "int8_miou": 0.31, "latency_ms": 2.5, "bytes": 476 * 1024},
        {"label": "naive-quick", "int8_miou": 0.305, "latency_ms": 2.0, "bytes": 480 * 1024},
        {"label": "naive-tiny", "int8_miou": 0.25, "latency_ms": 1.0, "bytes": 200 * 1024},
    ]
    frontier = {axis: pareto_front([fast, slow], axis) for axis in ("latency_ms", "bytes")}
    versus = versus_naive(frontier, family)
    # No slower than the naive student: both; the more accurate leads. No larger: only the fast one.
    assert versus[0]["latency_ms"] == {"finalist": "slow", "int8_miou": 0.33, "points": 2.0}
    assert versus[0]["bytes"] == {"finalist": "fast", "int8_miou": 0.30, "points": -1.0}
    assert versus[1]["latency_ms"]["points"] == -0.5
    assert versus[2]["latency_ms"] is None and versus[2]["bytes"] is None
    result = {
        "recipe": "tiny",
        "budget": {"latency_vs_recipe": None, "latency_ms": None, "size_kb": None, "threads": 2},
        "reference": {"label": "own", "latency_ms": 2.5},
        "chosen": {**slow, "proxy_int8_miou": 0.2, "export_bytes": 503 * 1024},
        "finalists": [{**fast, "proxy_int8_miou": 0.2}, {**slow, "proxy_int8_miou": 0.2}],
        "frontier": frontier,
        "naive": family,
        "versus_naive": versus,
        "latency_timing": "timed alternately",
        "trials": [],
    }
    markdown = search_markdown(result)
    assert "the frontier reaches the latency of 2 of 3 naive models and lies above 1 of those 2." in markdown
    assert "| naive | 0.3100 | 2.50 ms (1.00x) | 476.0 KiB | slow 0.3300 (+2.00) | fast 0.3000 (-1.00) |" in markdown
    assert "| naive-tiny | 0.2500 | 1.00 ms (0.40x) | 200.0 KiB | none (not covered) | none (not covered) |" in markdown
