"""search.md from a search's result (no training): latencies as multiples of the recipe's own
model's, repeats named as such, each outcome in words."""

from edgeseg.search.frontier import search_markdown


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
