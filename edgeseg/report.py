"""The run's report: `report.json` for machines, `report.md` for people, rewritten after every stage."""

from pathlib import Path

from edgeseg import __version__
from edgeseg.files import write_json_atomic, write_text_atomic


def write_report(run_dir: Path, recipe, records: list[dict], status: str, error: str | None = None) -> None:
    """Writes both report files; `status` is running, completed, failed, gate_failed or interrupted."""
    report = {
        "edgeseg_version": __version__,
        "recipe": recipe.name,
        "recipe_hash": recipe.hash,
        "status": status,
        "error": error,
        "completed_stages": [r["stage"] for r in records],
        "stages": records,
    }
    write_json_atomic(run_dir / "report.json", report)
    write_text_atomic(run_dir / "report.md", _markdown(report, recipe))


def _markdown(report: dict, recipe) -> str:
    lines = [f"# edgeseg run `{report['recipe']}`", "", f"Status: **{report['status']}**"]
    if report["error"]:
        lines += ["", f"Error: {report['error']}"]
    lines += [
        "", "| # | stage | seconds | params | file | gzip | val mIoU | sparsity | max unique weights |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for record in report["stages"]:
        miou = record.get("val_miou", record.get("int8", {}).get("miou"))
        lines.append(
            f"| {record['index']} | {record['stage']} | {record['seconds']:.1f} | {_value(record.get('params'))} "
            f"| {_kib(record.get('bytes'))} | {_kib(record.get('gzip_bytes'))} | {_value(miou, '.4f')} "
            f"| {_value(record.get('sparsity'), '.3f')} | {_value(record.get('max_unique_values'))} |"
        )
    verify = next((r for r in report["stages"] if r["stage"] == "verify"), None)
    if verify:
        lines += _verification_section(verify, recipe)
    return "\n".join(lines) + "\n"


def _verification_section(verify: dict, recipe) -> list[str]:
    latency = verify["latency"]
    lines = [
        "", "## Verification (val split, scored by the LiteRT interpreter)", "",
        f"- float Keras mIoU: {verify['float']['miou']:.4f}",
        f"- int8 .tflite mIoU: {verify['int8']['miou']:.4f} (drop {verify['miou_drop']:+.4f})",
        f"- int8 latency: median {latency['median_ms']:.2f} ms, p90 {latency['p90_ms']:.2f} ms "
        f"({latency['threads']} threads, this machine)",
        f"- gates: {'; '.join(verify['failed_gates']) or 'all passed'}",
        "", "| class | float IoU | int8 IoU |", "|---|---|---|",
    ]
    for name, f_iou, q_iou in zip(recipe.data.classes, verify["float"]["per_class_iou"], verify["int8"]["per_class_iou"]):
        lines.append(f"| {name} | {_value(f_iou, '.4f')} | {_value(q_iou, '.4f')} |")
    return lines


def _value(value, spec: str = "") -> str:
    return "" if value is None else format(value, spec)


def _kib(size: int | None) -> str:
    return "" if size is None else f"{size / 1024:.1f} KiB"
