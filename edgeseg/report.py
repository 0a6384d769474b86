"""The run's report: `report.json` for machines, `report.md` and PNG plots for people.

Rewritten after every stage, so an interrupted or failed run still says what completed.
"""

from pathlib import Path

from edgeseg.files import write_json_atomic, write_text_atomic
from edgeseg.markdown import table_head
from edgeseg.version import __version__

SCORED_MODELS = (("float", "float Keras"), ("float_tflite", "float .tflite"), ("quantized", "{mode} .tflite"))


def write_report(run_dir: Path, recipe, records: list[dict], status: str, error: str | None = None) -> None:
    """Writes both report files; `status` is running, completed, failed, gate_failed or interrupted."""
    from edgeseg._keras import numeric_environment

    report = {
        "edgeseg_version": __version__,
        "environment": numeric_environment(),
        "recipe": recipe.name,
        "recipe_hash": recipe.hash,
        "status": status,
        "error": error,
        "completed_stages": [r["stage"] for r in records],
        "stages": records,
    }
    points = _miou_vs_size_points(records)
    if len(points) >= 2:
        from edgeseg.plots import plot_miou_vs_size

        plot_miou_vs_size(points, run_dir / "plots" / "miou_vs_size.png")
        report["plots"] = ["plots/miou_vs_size.png"]
    write_json_atomic(run_dir / "report.json", report)
    write_text_atomic(run_dir / "report.md", _markdown(report, recipe))


def _miou_vs_size_points(records: list[dict]) -> list[tuple[str, float, float]]:
    points = [(r["stage"], r["bytes"] / 1024, r["val_miou"]) for r in records if "val_miou" in r and "bytes" in r]
    points += [(f"{r['mode']} .tflite", r["bytes"] / 1024, r["quantized"]["miou"]) for r in records if r["stage"] == "verify"]
    return points


def _markdown(report: dict, recipe) -> str:
    lines = [f"# edgeseg run `{report['recipe']}`", "", f"Status: **{report['status']}**"]
    if report["error"]:
        lines += ["", f"Error: {report['error']}"]
    lines += [
        "",
        *table_head("#", "stage", "seconds", "params", "file", "gzip", "val mIoU", "sparsity", "max unique weights"),
    ]
    for record in report["stages"]:
        miou = record.get("val_miou", record.get("quantized", {}).get("miou"))
        # For the .tflite, sparsity and values per output channel of the pruned and clustered kernels.
        kernels = record.get("kernels", {})
        sparsity = record.get("sparsity", kernels.get("sparsity_of_pruned_layers"))
        unique = record.get("max_unique_values", kernels.get("max_unique_per_channel_of_clustered_layers"))
        lines.append(
            f"| {record['index']} | {record['stage']} | {record['seconds']:.1f} | {_value(record.get('params'))} "
            f"| {_kib(record.get('bytes'))} | {_kib(record.get('gzip_bytes'))} | {_value(miou, '.4f')} "
            f"| {_value(sparsity, '.3f')} | {_value(unique)} |"
        )
    if "plots" in report:
        lines += ["", "![mIoU vs size](plots/miou_vs_size.png)"]
    channels = next((r for r in report["stages"] if r["stage"] == "prune_channels"), None)
    if channels:
        lines += channel_pruning_section(channels)
    quantize: dict = next((r for r in report["stages"] if r["stage"] == "quantize"), {})
    lines += quantize_section(quantize)
    verify = next((r for r in report["stages"] if r["stage"] == "verify"), None)
    if verify:
        lines += _verification_section(
            verify, list(recipe.data.classes), quantize.get("float_layers", []), quantize.get("kernels", {}).get("gzip_breakdown")
        )
    return "\n".join(lines) + "\n"


def _device_latency_lines(device: dict) -> list[str]:
    before, after = device["before"], device["after"]
    return [f"On the device (`measure_command`): {before:.2f} ms before, {after:.2f} ms after ({after / before:.2f}).", ""]


def channel_pruning_section(record: dict) -> list[str]:
    """`prune_channels` before and after: MACs, parameters, the int8 file, its latency; then the
    widths of the layers it narrowed."""
    before, after = record["before"], record["after"]
    threads = sorted(before["latency_ms"], key=int)
    lines = [
        "",
        "### Channel pruning",
        "",
        f"{record['target']} kept at most {record['keep']}, {record['allocation']} allocation by {record['importance']}, "
        f"{len(record['steps'])} step(s); fine-tune: {record['fine_tune_loss']}. The int8 files of the model before and "
        "after, timed alternately in one process on this machine's CPU.",
        "",
        *([f"**Latency target missed:** {record['latency_target_missed']}.", ""] if record.get("latency_target_missed") else []),
        *(_device_latency_lines(record["device_latency_ms"]) if record.get("device_latency_ms") else []),
        *table_head("model", "MACs", "params", "int8 file", "int8 gzip", *(f"latency {t} thr" for t in threads)),
    ]
    for label, costs in (("before", before), ("after", after)):
        lines.append(
            f"| {label} | {costs['macs'] / 1e6:,.1f} M | {costs['params']:,} | {_kib(costs['bytes'])} | "
            f"{_kib(costs['gzip_bytes'])} | " + " | ".join(f"{costs['latency_ms'][t]:.2f} ms" for t in threads) + " |"
        )
    lines.append(
        "| after / before | "
        + " | ".join(f"{after[key] / before[key]:.2f}" for key in ("macs", "params", "bytes", "gzip_bytes"))
        + " | "
        + " | ".join(f"{after['latency_ms'][t] / before['latency_ms'][t]:.2f}" for t in threads)
        + " |"
    )
    narrowed = [row for row in record["widths"] if row["after"] != row["before"]]
    lines += [
        "",
        f"Widths of the {len(narrowed)} layers narrowed (of {len(record['widths'])}):",
        "",
        *table_head("layer", "before", "after"),
    ]
    lines += [f"| {row['layer']} | {row['before']} | {row['after']} |" for row in narrowed]
    return lines


def quantize_section(quantize: dict) -> list[str]:
    lines = []
    if "attempts" in quantize:
        lines += [
            "",
            "### Quantization: mode auto",
            "",
            f"Attempts in order, each scored on the val split; the first within the budget ships: **{quantize['attempt']}**.",
            "",
            *table_head("attempt", "mode", "mIoU drop", "file", "seconds", "detail"),
        ]
        for row in quantize["attempts"]:
            if "skipped" in row:
                lines.append(f"| {row['attempt']} | | | | | skipped: {row['skipped']} |")
                continue
            detail = ", ".join(
                filter(
                    None,
                    [
                        f"{row['calibration_images']} calibration images" if "calibration_images" in row else "",
                        f"in float: {', '.join(row['float_layers'])}" if "float_layers" in row else "",
                        f"QAT ({row['qat']['scheme']}, {len(row['qat']['epochs'])} epochs)" if "qat" in row else "",
                    ],
                )
            )
            lines.append(
                f"| {row['attempt']} | {row['mode']} | {row['miou_drop']:+.4f} | {_kib(row['bytes'])} "
                f"| {row['seconds']:.1f} | {detail} |"
            )
    elif "qat" in quantize:
        qat = quantize["qat"]
        lines += [
            "",
            f"Quantization-aware training ({qat['scheme']}) for {len(qat['epochs'])} epochs before the "
            f"int8 conversion; val mIoU of the QAT model {qat['val_miou']:.4f}.",
        ]
    return lines


def _verification_section(
    verify: dict, class_names: list[str], float_layers: list[str], gzip_breakdown: dict | None
) -> list[str]:
    mode = verify["mode"]
    resolution = "each label's own resolution" if verify["quantized"]["resolution"] == "label" else "model input resolution"
    lines = [
        "",
        "## Verification",
        "",
        f"Val split, {verify['quantized']['images']} images, scored at {resolution}; every .tflite figure comes from "
        "running the file in the LiteRT interpreter.",
        "",
        *table_head("model", "mIoU", "pixel accuracy", "mean class accuracy", "boundary F1"),
    ]
    for key, title in SCORED_MODELS:
        scores, title = verify[key], title.format(mode=mode)
        lines.append(
            f"| {title} | {_value(scores['miou'], '.4f')} | {_value(scores['pixel_accuracy'], '.4f')} "
            f"| {_value(scores['mean_class_accuracy'], '.4f')} | {_value(scores['boundary_f1'], '.4f')} |"
        )
    if "model_resolution" in verify["quantized"]:
        lines += [
            "",
            f"At model input resolution: float mIoU {verify['float']['model_resolution']['miou']:.4f}, "
            f"{mode} mIoU {verify['quantized']['model_resolution']['miou']:.4f}.",
        ]
    agreement = verify["agreement"]
    logit_error = (
        ""
        if agreement["max_logit_error"] is None
        else f"; logit error max {agreement['max_logit_error']:.3f}, mean {agreement['mean_logit_error']:.4f}"
    )
    lines += [
        "",
        f"- {mode} vs float: mIoU drop {verify['miou_drop']:+.4f}; the argmax agrees on "
        f"{agreement['pixel_agreement']:.2%} of pixels{logit_error}",
        f"- {mode} file: {_kib(verify['bytes'])} ({_kib(verify['gzip_bytes'])} gzip)"
        + (
            f"; the interpreter adds {verify['memory_kib']} KiB of resident memory"
            if verify.get("memory_kib") is not None
            else ""
        ),
    ]
    if gzip_breakdown is not None:
        lines.append(
            f"- its gzip, by part: pruned and clustered kernels {_kib(gzip_breakdown['compressed_kernels'])}, other "
            f"kernels {_kib(gzip_breakdown['other_kernels'])}, biases, quantization scales and graph "
            f"{_kib(gzip_breakdown['biases_scales_and_graph'])}; floor {_kib(gzip_breakdown['floor'])} (the same file "
            "with the pruned and clustered kernels all zeros: no more pruning or clustering of them goes below it)"
        )
    for threads, latency in verify["latency"].items():
        lines.append(
            f"- latency, {threads} thread(s): median {latency['median_ms']:.2f} ms, "
            f"p90 {latency['p90_ms']:.2f} ms over {latency['runs']} invokes (this machine's CPU)"
        )
    lines.append(f"- gates: {'; '.join(verify['failed_gates']) or 'all passed'}")
    lines += _ops_section(verify["op_report"], full_integer=mode == "int8", float_layers=float_layers)
    if "quantization_debug" in verify:
        lines += debug_section(verify["quantization_debug"])
    lines += ["", *table_head("class", "float IoU", f"{mode} IoU", "drop")]
    for name, f_iou, q_iou, drop in zip(
        class_names, verify["float"]["per_class_iou"], verify["quantized"]["per_class_iou"], verify["class_iou_drop"]
    ):
        lines.append(f"| {name} | {_value(f_iou, '.4f')} | {_value(q_iou, '.4f')} | {_value(drop, '+.4f')} |")
    lines += [""] + [f"![{Path(plot).stem}]({plot})" for plot in verify["plots"]]
    return lines


def debug_section(debug: dict) -> list[str]:
    lines = [
        "",
        "### Where int8 loses accuracy (quantization debugger)",
        "",
        "Error of each quantized tensor against float on the calibration images, in quantization steps "
        "(RMSE / scale; plain rounding is about 0.29). Models with float input and output, so their "
        f"mIoU compares with the int8 figure of this table, {debug['int8_miou']:.4f}.",
        "",
        *table_head("layer", "op", "RMSE / scale", "max abs error", "mIoU with the layer in float", "gain"),
    ]
    lines += [
        f"| {row['layer']} | {row['op']} | {row['rmse_over_scale']:.3f} | {row['max_abs_error']:.4f} "
        f"| {row['miou_with_layer_in_float']:.4f} | {row['miou_gain']:+.4f} |"
        for row in debug["layers"]
    ]
    return lines


def _ops_section(op_report: dict, full_integer: bool, float_layers: list[str]) -> list[str]:
    lines = ["", *table_head("op", "count", "tensor dtypes")]
    lines += [f"| {op['op']} | {op['count']} | {', '.join(op['dtypes'])} |" for op in op_report["ops"]]
    lines.append("")
    if full_integer and op_report["float_ops"] and float_layers:
        lines.append(
            f"- float ops in the int8 model: {', '.join(op_report['float_ops'])}, for the layers `mode: auto` "
            f"kept in float: {', '.join(float_layers)}"
        )
    elif full_integer and op_report["float_ops"]:
        lines.append(f"- **warning**: float ops in the int8 model: {', '.join(op_report['float_ops'])}")
    if op_report["not_gpu_delegate_ops"]:
        lines.append(
            f"- **note**: not in the GPU delegate's documented op list (these run on the CPU when the GPU "
            f"delegate is used): {', '.join(op_report['not_gpu_delegate_ops'])}"
        )
    return lines


def _value(value, spec: str = "") -> str:
    return "" if value is None else format(value, spec)


def _kib(size: int | None) -> str:
    return "" if size is None else f"{size / 1024:.1f} KiB"
