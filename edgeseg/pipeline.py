"""The stage loop: one run folder, one record per stage, a report that is current after every stage.

Each stage's record carries its resume key (`stage_keys`): a hash of the previous stage's key and
of exactly what the stage reads (its settings, inherited values included, and the recipe sections
it declares in `edgeseg.stages.STAGES`). With `resume`, the leading stages whose folder holds a
record with the same key are reused, so editing a value reruns the first stage that reads it and
every stage after it.

Example::

    result = run(load_recipe("recipes/quickstart.yaml"))
    result.model_path   # PosixPath('runs/quickstart/model.tflite')
"""

import dataclasses
import hashlib
import json
import logging
import shutil
import time
from pathlib import Path

import yaml

from edgeseg._keras import tf
from edgeseg.contract import DESCRIPTION_FILE, EXPORTED_FILES, LABELS_FILE, MODEL_FILE
from edgeseg.data import data_fingerprint, load_split
from edgeseg.data.folder import load_unlabeled_images
from edgeseg.distribution import strategy_for
from edgeseg.errors import EdgesegError, VerificationError
from edgeseg.files import files_fingerprint, write_json_atomic, write_text_atomic
from edgeseg.models.copying import copy_model
from edgeseg.models.zoo import model_from_spec
from edgeseg.recipe import MODEL_CHANGING_STAGES, Recipe
from edgeseg.report import write_report
from edgeseg.stages import STAGES
from edgeseg.stages.base import PipelineState, StageContext, StageOutcome

log = logging.getLogger("edgeseg")


@dataclasses.dataclass(frozen=True)
class RunResult:
    """Where a run's files are and what its stages recorded."""

    run_dir: Path
    records: list

    def record(self, stage: str) -> dict | None:
        """The record of `stage`, or None when the recipe had no such stage."""
        return next((r for r in self.records if r["stage"] == stage), None)

    def required_record(self, stage: str) -> dict:
        """The record of `stage`, which the caller needs the run to have."""
        record = self.record(stage)
        if record is None:
            raise EdgesegError(
                f"{self.run_dir}: the run has no '{stage}' stage. Received: stages {[r['stage'] for r in self.records]}"
            )
        return record

    @property
    def model_path(self) -> Path | None:
        return self.run_dir / MODEL_FILE if self.record("export") else None

    def summary_lines(self) -> list[str]:
        """What the CLI prints last: where the model is, and its mIoU next to the float model's."""
        lines = []
        verify, export, quantize = self.record("verify"), self.record("export"), self.record("quantize")
        if export is not None and quantize is not None:
            size, mode = export["bytes"], quantize["mode"]
            lines.append(f"model: {self.model_path} ({mode}, {size / 1024:.1f} KiB) with {LABELS_FILE} and {DESCRIPTION_FILE}")
        if verify is not None:
            lines.append(
                f"val mIoU on {verify['quantized']['images']} images: {verify['mode']} .tflite {verify['quantized']['miou']:.4f} "
                f"vs float {verify['float']['miou']:.4f} (drop {verify['miou_drop']:+.4f}), "
                f"interpreter {verify['latency'][str(verify['threads'])]['median_ms']:.2f} ms/image "
                f"({verify['threads']} threads)"
            )
        lines.append(f"report: {self.run_dir / 'report.md'}")
        return lines


def run(recipe: Recipe, runs_dir: str | Path = "runs", resume: bool = False, reuse_from=()) -> RunResult:
    """Runs every stage of `recipe` into `<runs_dir>/<recipe.name>/`; returns the records.

    A failed gate raises `VerificationError` after the report is written; any failure leaves the
    folders of the stages that completed, and a report that says which did. With `resume`, the
    leading stages whose record matches the recipe (same key) are reused from their folders.
    `reuse_from` names other run folders whose completed stages with the same key are copied in
    and reused (a benchmark's arms that share their first stages train them once).
    """
    data = recipe.data
    # First: splitting the CPU into logical devices must precede anything TensorFlow runs.
    strategy = strategy_for(recipe.distribute)
    if recipe.distribute is not None:
        log.info("distribute: %s over %d replicas", recipe.distribute.strategy, strategy.num_replicas_in_sync)
    log.info("loading data (%s)", data.format)
    train, val = load_split(data, "train", recipe.seed), load_split(data, "val", recipe.seed)
    log.info("data: %d train and %d val images at %dx%d, %d classes", len(train), len(val), *data.input_size, len(data.classes))
    unlabeled = None
    if data.unlabeled is not None:
        unlabeled = load_unlabeled_images(data.unlabeled, data.input_size)
        log.info("data: %d unlabeled images for distill", len(unlabeled))
    state = PipelineState(model=model_from_spec(recipe.teacher, tuple(data.input_size), len(data.classes), recipe.seed))
    # Only now that data and teacher are known good is the previous run of this name touched.
    run_dir = Path(runs_dir) / recipe.name
    keys = stage_keys(recipe, data_fingerprint(data))
    stages = recipe.stage_items()
    reusable = _completed_stages(recipe, keys, ([run_dir] if resume else []) + [Path(folder) for folder in reuse_from])
    # Resuming keeps the folder of the first stage to rerun too: its training checkpoint, if its
    # key still matches, holds the epochs that stage completed.
    kept = [folder.name for folder in reusable if folder.parent == run_dir]
    if len(reusable) < len(stages):
        kept.append(stage_folder(len(reusable) + 1, stages[len(reusable)][0]))
    try:
        _prepare_run_dir(run_dir, kept if resume else None)
        for folder in reusable:
            if folder.parent != run_dir:
                log.info("%s: copied from %s", folder.name, folder.parent)
                shutil.rmtree(run_dir / folder.name, ignore_errors=True)
                shutil.copytree(folder, run_dir / folder.name)
        write_text_atomic(run_dir / "recipe.yaml", yaml.safe_dump(recipe.model_dump(mode="json"), sort_keys=False))
    except OSError as error:
        raise _write_error(error, run_dir) from None
    records, state = _restored(recipe, run_dir, len(reusable), state)
    ctx = StageContext(
        train,
        val,
        list(data.classes),
        data.batch_size,
        data.augment,
        recipe.seed,
        run_dir,
        recipe,
        strategy=strategy,
        unlabeled=unlabeled,
    )
    for index, (name, cfg) in enumerate(stages[len(records) :], start=len(records) + 1):
        stage_dir = run_dir / stage_folder(index, name)
        stage_dir.mkdir(parents=True, exist_ok=True)
        log.info("[%d/%d] %s", index, len(stages), name)
        stage_ctx = dataclasses.replace(ctx, stage_dir=stage_dir, stage_key=keys[index - 1])
        started = time.perf_counter()
        try:
            outcome = _run_stage(name, state, cfg, stage_ctx)
        except OSError as error:
            _report_if_possible(run_dir, recipe, records, "failed", f"{name}: {error}")
            raise _write_error(error, run_dir) from None
        except tf.errors.ResourceExhaustedError as error:  # TensorFlow's own writers' full disk, or out of memory
            _report_if_possible(run_dir, recipe, records, "failed", f"{name}: {error.message.splitlines()[0]}")
            raise _exhausted_error(error, name, stage_dir) from None
        except Exception as error:
            _report_if_possible(run_dir, recipe, records, "failed", f"{name}: {error}")
            raise
        except KeyboardInterrupt:
            _report_if_possible(run_dir, recipe, records, "interrupted", f"interrupted during {name}")
            raise
        record = {
            "stage": name,
            "index": index,
            "key": stage_ctx.stage_key,
            "seconds": round(time.perf_counter() - started, 2),
            **outcome.record,
        }
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


def _run_stage(name: str, state: PipelineState, cfg, ctx: StageContext) -> StageOutcome:
    """Runs a stage; a training stage under the run's strategy, handing on a single-device copy."""
    if name not in MODEL_CHANGING_STAGES or ctx.recipe.distribute is None:
        return STAGES[name].apply(state, cfg, ctx)
    with ctx.strategy.scope():
        outcome = STAGES[name].apply(state, cfg, ctx)
    return dataclasses.replace(outcome, state=dataclasses.replace(outcome.state, model=copy_model(outcome.state.model)))


def stage_keys(recipe: Recipe, data_files: str = "") -> list[str]:
    """Each stage's resume key, in recipe order: a hash of the previous key (the first stage's
    previous key hashes the model it starts from, `teacher:`) and of what the stage reads: its
    settings, with the values inherited from other sections, and the recipe sections
    `STAGES[name].reads` names. Sections that name files carry a fingerprint of them: `data` of its
    images and labels (`data_files`, from `data_fingerprint`), `teacher` and `student` of their model
    and weights files, so editing a file reruns what read it."""
    dumped = recipe.model_dump(mode="json")
    dumped["data"]["files"] = data_files
    for role in ("teacher", "student"):
        spec = getattr(recipe, role)
        if spec is not None:
            named = [path for path in (spec.path, spec.weights, spec.backbone_weights) if isinstance(path, Path)]
            dumped[role]["files"] = files_fingerprint(named) if named else ""
    key = _digest({"teacher": dumped["teacher"]})
    keys = []
    for name, settings in recipe.stage_items():
        reads = {section: dumped[section] for section in STAGES[name].reads}
        key = _digest({"previous": key, "stage": name, "settings": settings.model_dump(mode="json"), **reads})
        keys.append(key)
    return keys


def _digest(value) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()[:16]


def stage_folder(index: int, name: str) -> str:
    """`03-prune`: the folder of stage `index` (1-based) in the run folder."""
    return f"{index:02d}-{name}"


def _completed_stages(recipe: Recipe, keys: list[str], run_dirs: list[Path]) -> list[Path]:
    """The folders of the leading stages of `recipe` that one of `run_dirs` completed with the same
    key, the first run folder holding each stage winning; stages without a restorer end the list."""
    found = []
    for index, (name, _) in enumerate(recipe.stage_items(), start=1):
        if STAGES[name].restore is None:
            break
        folder = next(
            (
                run_dir / stage_folder(index, name)
                for run_dir in run_dirs
                if _record_key(run_dir / stage_folder(index, name)) == keys[index - 1]
            ),
            None,
        )
        if folder is None:
            break
        found.append(folder)
    return found


def _record_key(stage_dir: Path) -> str | None:
    try:
        return json.loads((stage_dir / "record.json").read_text()).get("key")
    except (OSError, ValueError, AttributeError):
        return None


def _restored(recipe: Recipe, run_dir: Path, count: int, state: PipelineState) -> tuple[list[dict], PipelineState]:
    """The records and state after the first `count` stages, from their folders in `run_dir`."""
    records = []
    for index, (name, _) in enumerate(recipe.stage_items()[:count], start=1):
        stage_dir = run_dir / stage_folder(index, name)
        restore = STAGES[name].restore
        if restore is None:  # _completed_stages ends before a stage without a restorer
            raise AssertionError(f"{name} has no restorer")
        state = restore(state, stage_dir)
        records.append(json.loads((stage_dir / "record.json").read_text()))
        log.info("[%d] %s reused from %s", index, name, stage_dir)
    return records, state


def _write_error(error: OSError, run_dir: Path) -> EdgesegError:
    """A full, read-only or forbidden disk is the user's to fix: one line naming the file."""
    return EdgesegError(f"{error.filename or run_dir}: cannot write the run folder: {error.strerror or error}")


def _exhausted_error(error, stage: str, stage_dir: Path) -> EdgesegError:
    """TensorFlow's ResourceExhaustedError, which is not an OSError: a full disk under its checkpoint
    or log writers, or memory a tensor did not get; either way one line the user can act on."""
    message = error.message.splitlines()[0] if error.message else type(error).__name__
    if "no space left" in message.lower():
        return EdgesegError(f"{stage_dir}: cannot write the run folder: No space left on device ({stage})")
    return EdgesegError(f"{stage}: out of memory ({message[:160]}); lower data.batch_size or data.input_size")


def _report_if_possible(run_dir: Path, recipe, records: list, status: str, error: str) -> None:
    try:
        write_report(run_dir, recipe, records, status, error)
    except OSError as report_error:  # e.g. the disk that failed the stage is full
        log.warning("could not write the report in %s: %s", run_dir, report_error.strerror or report_error)


def _prepare_run_dir(run_dir: Path, kept_folders: list[str] | None) -> None:
    """Clears what a new run replaces: the whole folder, or, resuming, all but `kept_folders`; always
    the report and any exported model."""
    if run_dir.exists() and kept_folders is None:
        log.info("replacing the previous run in %s", run_dir)
        shutil.rmtree(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    for stage_dir in sorted(run_dir.glob("[0-9][0-9]-*")):
        if stage_dir.name not in (kept_folders or ()):
            shutil.rmtree(stage_dir)
    for name in (*EXPORTED_FILES, "report.json", "report.md"):
        (run_dir / name).unlink(missing_ok=True)


def _headline(record: dict) -> str:
    if "val_miou" in record:
        return f": val mIoU {record['val_miou']:.4f}"
    if "quantized" in record:
        return f": {record['mode']} mIoU {record['quantized']['miou']:.4f}, float {record['float']['miou']:.4f}"
    if "bytes" in record:
        return f": {record['bytes'] / 1024:.1f} KiB"
    return ""
