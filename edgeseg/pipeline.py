"""The stage loop: one run folder, one record per stage, a report that is current after every stage.

Example:
    >>> result = run(load_recipe("recipes/quickstart.yaml"))
    >>> result.model_path
    PosixPath('runs/quickstart/model.tflite')
"""

import dataclasses
import logging
import shutil
import time
from pathlib import Path

import yaml

from edgeseg.data import load_split
from edgeseg.errors import VerificationError
from edgeseg.files import write_json_atomic
from edgeseg.models.zoo import model_from_spec
from edgeseg.report import write_report
from edgeseg.stages import STAGES
from edgeseg.stages.base import PipelineState, StageContext

log = logging.getLogger("edgeseg")


@dataclasses.dataclass(frozen=True)
class RunResult:
    """Where a run's files are and what its stages recorded."""

    run_dir: Path
    records: list

    def record(self, stage: str) -> dict | None:
        return next((r for r in self.records if r["stage"] == stage), None)

    @property
    def model_path(self) -> Path | None:
        return self.run_dir / "model.tflite" if self.record("export") else None

    def summary_lines(self) -> list[str]:
        """What the CLI prints last: where the model is, and its mIoU next to the float model's."""
        lines = []
        verify = self.record("verify")
        if self.model_path is not None:
            size = self.record("export")["bytes"]
            lines.append(f"model: {self.model_path} (int8, {size / 1024:.1f} KiB) with labels.txt and edgeseg.json")
        if verify is not None:
            lines.append(
                f"val mIoU on {verify['int8']['images']} images: int8 .tflite {verify['int8']['miou']:.4f} "
                f"vs float {verify['float']['miou']:.4f} (drop {verify['miou_drop']:+.4f}), "
                f"interpreter {verify['latency'][str(verify['threads'])]['median_ms']:.2f} ms/image "
                f"({verify['threads']} threads)"
            )
        lines.append(f"report: {self.run_dir / 'report.md'}")
        return lines


def run(recipe, runs_dir: str | Path = "runs") -> RunResult:
    """Runs every stage of `recipe` into `<runs_dir>/<recipe.name>/`; returns the records.

    A failed gate raises `VerificationError` after the report is written; any failure leaves the
    folders of the stages that completed, and a report that says which did.
    """
    data = recipe.data
    log.info("loading data (%s)", data.format)
    train, val = load_split(data, "train", recipe.seed), load_split(data, "val", recipe.seed)
    log.info("data: %d train and %d val images at %dx%d, %d classes", len(train), len(val), *data.input_size, len(data.classes))
    state = PipelineState(model=model_from_spec(recipe.teacher, tuple(data.input_size), len(data.classes), recipe.seed))
    # Only now that data and teacher are known good is the previous run of this name replaced.
    run_dir = _fresh_run_dir(Path(runs_dir) / recipe.name)
    (run_dir / "recipe.yaml").write_text(yaml.safe_dump(recipe.model_dump(mode="json"), sort_keys=False))
    ctx = StageContext(train, val, list(data.classes), data.batch_size, data.augment, recipe.seed, run_dir, recipe)
    records: list[dict] = []
    stages = recipe.stage_items()
    for index, (name, cfg) in enumerate(stages, start=1):
        stage_dir = run_dir / f"{index:02d}-{name}"
        stage_dir.mkdir(parents=True, exist_ok=True)
        log.info("[%d/%d] %s", index, len(stages), name)
        started = time.perf_counter()
        try:
            outcome = STAGES[name](state, cfg, dataclasses.replace(ctx, stage_dir=stage_dir))
        except Exception as error:
            write_report(run_dir, recipe, records, "failed", f"{name}: {error}")
            raise
        except KeyboardInterrupt:
            write_report(run_dir, recipe, records, "interrupted", f"interrupted during {name}")
            raise
        record = {"stage": name, "index": index, "seconds": round(time.perf_counter() - started, 2), **outcome.record}
        write_json_atomic(stage_dir / "record.json", record)
        records.append(record)
        log.info("[%d/%d] %s done in %.1fs%s", index, len(stages), name, record["seconds"], _headline(record))
        if record.get("failed_gates"):
            write_report(run_dir, recipe, records, "gate_failed", record["failed_gates"][0])
            raise VerificationError(record["failed_gates"][0] + f" (report: {run_dir / 'report.md'})")
        write_report(run_dir, recipe, records, "running")
        state = outcome.state
    write_report(run_dir, recipe, records, "completed")
    return RunResult(run_dir, records)


def _fresh_run_dir(run_dir: Path) -> Path:
    """An empty run folder; a previous run of the same name is replaced, so no stale model survives."""
    if run_dir.exists():
        log.info("replacing the previous run in %s", run_dir)
        shutil.rmtree(run_dir)
    run_dir.mkdir(parents=True)
    return run_dir


def _headline(record: dict) -> str:
    if "val_miou" in record:
        return f": val mIoU {record['val_miou']:.4f}"
    if "int8" in record:
        return f": int8 mIoU {record['int8']['miou']:.4f}, float {record['float']['miou']:.4f}"
    if "bytes" in record:
        return f": {record['bytes'] / 1024:.1f} KiB"
    return ""
