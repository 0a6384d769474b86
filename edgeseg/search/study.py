"""`edgeseg search`: the best model within a budget, and the Pareto frontier around it.

Optuna samples candidates from the recipe's space (TPE, seeded by the recipe) in a study stored in
SQLite by default (`runs/<name>-search/study.db`), so a killed search resumes without repeating a
finished trial, and several workers can share one study through a database URL (a candidate one
worker is training, another waits for rather than measuring it twice). The first trial is
the recipe's own model when the space holds it (`_enqueue_first_points`). Each trial:

1. measures the candidate untrained (`untrained_costs`); outside the budget it is pruned, never trained.
   Latencies are measured against one reference file, the recipe's own model untrained
   (`LatencyReference`): on this machine timed alternately with it and scaled to its timing at the
   start of the search, so load on the machine does not move them;
2. trains it as an ordinary run folder (`trial-NNN/`, with its recipe) on the proxy schedule,
   reporting every epoch's val mIoU to Optuna's median pruner, which stops hopeless trials early;
3. scores its int8 file in `verify`: the trial's value.

Then the trials on the proxy frontier of int8 mIoU against latency, best first, up to `finalists`,
train with the recipe's full schedule (`final-NNN/`) and are measured again; the frontier is theirs,
and the best of those within the budget and `min_miou` (highest int8 val mIoU; ties to the faster)
is exported to the search folder. A budget no candidate meets ends with the closest
candidates and exit 4.

Example::

    result = run_search(load_recipe("recipes/camvid_search.yaml"), runs_dir="runs")
    result["chosen"]["label"], result["frontier"]["latency_ms"]
"""

import contextlib
import itertools
import logging
import math
import random
import shutil
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from edgeseg.contract import EXPORTED_FILES
from edgeseg.errors import EdgesegError, RecipeError, StageError
from edgeseg.files import write_json_atomic, write_text_atomic
from edgeseg.recipe import BudgetConfig, Recipe, SearchConfig
from edgeseg.recipe.search import default_storage
from edgeseg.search.candidates import (
    Candidate,
    CandidateObstacle,
    LatencyReference,
    budget_violations,
    candidate_from_params,
    candidate_recipe,
    latencies_together,
    latency_costs,
    latency_reference,
    recipe_candidate,
    recipe_params,
    sample_candidate,
    searched_role,
    space_choices,
    stride_obstacle,
    untrained_costs,
)
from edgeseg.search.frontier import pareto_front, plot_frontier, search_markdown, versus_naive

log = logging.getLogger("edgeseg")
REFERENCE_ATTR = "reference_latency_ms"
REPEATS_ALLOWED = 5  # trials per wanted candidate before a sampler that only repeats itself is stopped
# A running trial records that its worker is alive this often; after STALE_AFTER_SECONDS without, any
# worker fails it (SIGKILL, a lost machine) and queues its candidate again, at most STALE_RETRIES
# times (a candidate whose training kills its worker, out of memory say, is not retried forever).
HEARTBEAT_SECONDS = 30
STALE_AFTER_SECONDS = 300
STALE_RETRIES = 2
HEARTBEAT_ATTR = "heartbeat"  # set on trials run with a heartbeat: only those are waited for
TWIN_POLL_SECONDS = 10


@dataclass(frozen=True)
class SearchSetup:
    """What every trial and finalist of one search shares."""

    recipe: Recipe
    search: SearchConfig
    budget: BudgetConfig
    folder: Path
    searched_stage: str  # the stage that trains the searched model: its epochs go to the pruner
    reference: LatencyReference


class TrialStopped(Exception):
    """Optuna's pruner judged a trial hopeless at an epoch."""


def run_search(recipe: Recipe, runs_dir: str | Path = "runs", naive: Sequence[dict] = ()) -> dict:
    """Runs (or resumes) the search of `recipe` into `<runs_dir>/<name>-search/`; writes search.json,
    search.md, frontier.png and the chosen model's export there; returns what search.json holds.
    `naive`, the naive family (`frontier.naive_points` of benchmark.json files), goes on the frontier
    plot, its files timed again beside the finalists'."""
    import optuna

    if recipe.search is None:
        raise EdgesegError("search: the recipe has no 'search:' section naming the space to explore")
    search, budget = recipe.search, recipe.budget or BudgetConfig()
    family = list(naive)
    folder = Path(runs_dir) / f"{recipe.name}-search"
    folder.mkdir(parents=True, exist_ok=True)
    # ERROR: Optuna logs a failed trial's traceback as a warning; the search logs the error in one line.
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    space_size = math.prod(len(values) for values in _distinct_choices(recipe).values())
    study = _open_study(recipe.name, search.storage or default_storage(Path(runs_dir), recipe.name), search.proxy_epochs)
    _fail_stale_trials(study)  # a killed worker's trials, each queued again (`_open_study`)
    # Resumed: a sampler seeded as at the start would propose the first candidates again.
    study.sampler = optuna.samplers.TPESampler(seed=recipe.seed + len(study.trials))
    reference = _shared_reference(study, recipe, budget)
    _enqueue_first_points(study, recipe, whole_space=space_size <= search.trials)
    searched_stage = "distill" if searched_role(recipe) == "student" else "train"
    setup = SearchSetup(recipe, search, budget, folder, searched_stage, reference)
    # TPE proposes a candidate again, in small spaces often (4 of the 12 trials of a CamVid search):
    # a repeat takes its earlier outcome and does not count, so `trials` distinct candidates are measured.
    wanted = min(search.trials, space_size)
    started, done_before, asked = time.perf_counter(), _distinct_done(study), 0
    while (done := _distinct_done(study)) < wanted:
        if asked >= REPEATS_ALLOWED * (wanted - done_before):
            log.warning("search: the sampler keeps proposing candidates already tried; stopping at %d of %d", done, wanted)
            break
        _progress(study, done, wanted, time.perf_counter() - started, done - done_before)
        setup = _with_stored_scale(study, setup)
        _run_trial(study, setup)
        asked += 1
    setup = _with_stored_scale(study, setup)
    measured, family, timing = _finalists(study, setup, family)
    finalists = [row for row in measured if not row["over_budget"]]
    trials = _trial_rows(study)
    if not finalists:
        # Finalists trained fully and measured again come first: their reasons are the final ones.
        named = {row["trial"] for row in measured}
        rows = measured + [row for row in trials if row["trial"] not in named]
        closest = sorted(rows, key=lambda row: len(_shortfall(row)))[:3]
        raise StageError(
            "search: no candidate meets the budget; the closest: "
            + "; ".join(f"{row['label']} ({', '.join(_shortfall(row))})" for row in closest)
        )
    chosen = max(finalists, key=lambda row: (row["int8_miou"], -row["latency_ms"]))
    frontier = {axis: pareto_front(finalists, axis) for axis in ("latency_ms", "bytes")}
    for name in EXPORTED_FILES:
        shutil.copy2(Path(chosen["run_dir"]) / name, folder / name)
    result = {
        "recipe": recipe.name,
        "budget": budget.model_dump(),
        "trials": trials,
        "finalists": finalists,
        "chosen": chosen,
        "frontier": frontier,
        "naive": family,
        "versus_naive": versus_naive(frontier, family),
        "latency_timing": timing,
        "reference": {"label": setup.reference.label, "latency_ms": setup.reference.latency_ms},
        "seconds": round(time.perf_counter() - started, 1),
    }
    result["plots"] = [str(plot_frontier(result, folder / "frontier.png").relative_to(folder))]
    write_json_atomic(folder / "search.json", result)
    write_text_atomic(folder / "search.md", search_markdown(result))
    log.info(
        "search: chose %s: int8 val mIoU %.4f, %.2f ms, %.1f KiB exported; written to %s",
        chosen["label"],
        chosen["int8_miou"],
        chosen["latency_ms"],
        chosen["export_bytes"] / 1024,
        folder,
    )
    return result


def _shared_reference(study, recipe: Recipe, budget: BudgetConfig) -> LatencyReference:
    """The search's `LatencyReference`, its first timing kept in the study, so a resumed search (or
    another worker on the same storage) measures on the same scale. A study begun with other
    latency settings, or before edgeseg measured against a reference, is refused: its trials'
    latencies are on another scale."""
    settings = {"model": recipe_candidate(recipe).label, "threads": budget.threads, "measure_command": budget.measure_command}
    stored = study.user_attrs.get(REFERENCE_ATTR)
    if stored is None and any(_done(trial) for trial in study.trials):
        raise RecipeError(
            f"search: study {study.study_name!r} holds trials timed alone, before latencies were measured against "
            "the recipe's own model: start a new study (delete its study.db, or set search.storage)"
        )
    if stored is not None:
        changed = [f"{key} {stored[key]!r}, now {value!r}" for key, value in settings.items() if stored[key] != value]
        if changed:
            raise RecipeError(
                f"search: study {study.study_name!r} was measured with other latency settings ("
                + "; ".join(changed)
                + "): restore them, or start a new study (delete its study.db, or set search.storage)"
            )
    reference = latency_reference(recipe, budget, stored["latency_ms"] if stored else None)
    if stored is None:
        study.set_user_attr(REFERENCE_ATTR, {**settings, "latency_ms": reference.latency_ms})
    log.info(
        "search: latencies are measured against the recipe's own model, untrained, %s: %.2f ms at %d threads",
        reference.label,
        reference.latency_ms,
        budget.threads,
    )
    return reference


def _enqueue_first_points(study, recipe: Recipe, whole_space: bool) -> None:
    """The trials to run first, each unless a trial has taken it (done, waiting or running; an
    interrupted one does not count): the recipe's own model when the space holds it, since random
    start-up trials may never sample it (1 of the first CamVid search's 36 points); and, for a
    space no larger than the trials asked for, every other point in a seeded order, so each is
    measured once."""
    import optuna

    own = recipe_params(recipe)
    if own is None:
        log.info("search: the recipe's own model is not a point of the space")
    points = [own] if own is not None else []
    if whole_space:
        choices = _distinct_choices(recipe)
        others = [dict(zip(choices, values)) for values in itertools.product(*choices.values())]
        random.Random(recipe.seed).shuffle(others)
        points += [point for point in others if point != own]
    pending = (optuna.trial.TrialState.WAITING, optuna.trial.TrialState.RUNNING)
    taken = [
        trial.system_attrs.get("fixed_params", trial.params) for trial in study.trials if _done(trial) or trial.state in pending
    ]
    for point in points:
        if point not in taken:
            study.enqueue_trial(point)
    if own is not None and own not in taken:
        log.info("search: the next trial is the recipe's own model, %s", candidate_from_params(own).label)


def _run_trial(study, setup: SearchSetup) -> None:
    """Runs one trial through Optuna and records its outcome: pruned (outside the budget, or hopeless
    during training), failed (a stage error, recorded; it counts as done), or the int8 val mIoU of
    its proxy training. A trial interrupted (Ctrl-C, SIGTERM) is failed too, without an error, so a
    rerun counts it as not done and samples anew. `study.optimize` rather than ask and tell: it keeps
    the trial's heartbeat while it runs and fails the trials of workers that died (SIGKILL, a lost
    machine), which nothing else would."""
    import optuna

    taken_over = []  # the trial another worker failed as stale, its candidate queued again

    def objective(trial) -> float:
        trial.set_user_attr(HEARTBEAT_ATTR, True)
        try:
            value = _evaluate(trial, setup)
        except StageError as error:  # this candidate failed (e.g. a stage missed its target); the others may not
            log.warning("search: trial %d failed: %s", trial.number, error)
            trial.set_user_attr("error", str(error))
            raise
        except optuna.exceptions.UpdateFinishedTrialError:
            taken_over.append(trial.number)
            raise
        if value is None:
            raise optuna.TrialPruned()
        return value

    with _heartbeat_api():
        try:
            study.optimize(objective, n_trials=1, catch=(StageError,))
        except ValueError:  # Optuna's "Cannot tell a FAIL trial": the trial was no longer this worker's
            if not taken_over:
                raise
            log.warning(
                "search: trial %d was failed by another worker (no heartbeat for %d s: this one was paused or its "
                "storage locked); its candidate is queued again",
                taken_over[0],
                STALE_AFTER_SECONDS,
            )


def _evaluate(trial, setup: SearchSetup) -> float | None:
    """The trial's int8 val mIoU after proxy training, or None when it is pruned."""
    import optuna

    from edgeseg.pipeline import run
    from edgeseg.training import epoch_listener

    recipe, search, folder, budget = setup.recipe, setup.search, setup.folder, setup.budget
    candidate = sample_candidate(trial, recipe)
    trial.set_user_attr("candidate", candidate.as_dict())
    trial.set_user_attr("label", candidate.label)
    twin = _earlier_outcome(trial)
    if twin is not None:
        # Samplers propose a point again, in small spaces often: it would train (or stop) the same way.
        log.info(
            "search: trial %d, %s: the same candidate as trial %d, whose outcome it takes",
            trial.number,
            candidate.label,
            twin.number,
        )
        trial.set_user_attr("repeat_of", twin.number)
        for key in ("costs", "over_budget", "int8_miou", "run_dir"):
            if key in twin.user_attrs:
                trial.set_user_attr(key, twin.user_attrs[key])
        if "error" in twin.user_attrs:
            raise StageError(twin.user_attrs["error"])
        # A stopped trial's value is its last epoch's score, not an outcome: the repeat is stopped too.
        return twin.value if twin.state == optuna.trial.TrialState.COMPLETE else None
    obstacle = stride_obstacle(candidate)
    if obstacle is not None:
        trial.set_user_attr("over_budget", [obstacle])
        return None
    try:
        costs = untrained_costs(recipe, candidate, budget, setup.reference)
    except CandidateObstacle as obstacle_found:
        log.info("search: trial %d, %s: cannot be built (%s)", trial.number, candidate.label, obstacle_found)
        trial.set_user_attr("over_budget", [str(obstacle_found)])
        return None
    trial.set_user_attr("costs", costs)
    over = budget_violations(costs, budget)
    if over:
        log.info("search: trial %d, %s: outside the budget (%s), not trained", trial.number, candidate.label, ", ".join(over))
        trial.set_user_attr("over_budget", over)
        return None
    log.info(
        "search: trial %d, %s: %.2f ms, %.1f KiB; training %d epochs",
        trial.number,
        candidate.label,
        costs["latency_ms"],
        costs["bytes"] / 1024,
        search.proxy_epochs,
    )

    def report(stage: str, epoch: int, miou: float) -> None:
        if stage.endswith(setup.searched_stage):
            trial.report(miou, epoch)
            if trial.should_prune():
                raise TrialStopped(f"val mIoU {miou:.4f} at epoch {epoch}")

    trial_recipe = candidate_recipe(recipe, candidate, f"trial-{trial.number:03d}", epochs=search.proxy_epochs)
    try:
        with epoch_listener(report):
            result = run(trial_recipe, folder, resume=True, reuse_from=_run_folders(folder))
    except TrialStopped as stop:
        log.info("search: trial %d stopped early (%s)", trial.number, stop)
        return None
    miou = result.required_record("verify")["quantized"]["miou"]
    trial.set_user_attr("int8_miou", miou)
    trial.set_user_attr("run_dir", str(result.run_dir))
    return miou


def _earlier_outcome(trial):
    """The done trial of the same candidate, if any. One still running in another worker is waited
    for until it ends or its heartbeat stops (its worker died): measured twice, it would cost a whole
    proxy training. Only an earlier-numbered twin is waited for, so two workers never wait on each
    other; a twin from before heartbeats (`HEARTBEAT_ATTR`) is not, as nothing could tell it dead."""
    import optuna

    waited = False
    while True:
        same = [
            other
            for other in trial.study.get_trials(deepcopy=False)
            if other.number != trial.number and other.params == trial.params
        ]
        done = next((other for other in same if _done(other)), None)
        running = [
            other
            for other in same
            if other.number < trial.number
            and other.state == optuna.trial.TrialState.RUNNING
            and other.user_attrs.get(HEARTBEAT_ATTR)
        ]
        if done is not None or not running:
            return done
        if not waited:
            log.info(
                "search: trial %d: the same candidate as trial %d, running in another worker; waiting for its outcome",
                trial.number,
                running[0].number,
            )
            waited = True
        time.sleep(TWIN_POLL_SECONDS)
        _fail_stale_trials(trial.study)


@contextlib.contextmanager
def _heartbeat_api():
    """Optuna's heartbeat (storage arguments, stale-trial failing, `optimize` with it) without its
    ExperimentalWarning on every call."""
    import optuna

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        yield


def _fail_stale_trials(study) -> None:
    """Fails the trials whose worker stopped beating for `STALE_AFTER_SECONDS` (Optuna's heartbeat)."""
    import optuna

    with _heartbeat_api():
        optuna.storages.fail_stale_trials(study)


def _finalists(study, setup: SearchSetup, family: list[dict]) -> tuple[list[dict], list[dict], str]:
    """The trials on the proxy frontier (int8 mIoU against latency), best first, up to the recipe's
    count, trained with the full schedule and measured again, each with the limits it now exceeds
    (`over_budget`, min_miou included); the naive `family` with its files' latencies measured with
    the finalists' (one process, timed alternately); and how the latencies were measured."""
    from edgeseg.pipeline import run

    recipe, search, folder, budget = setup.recipe, setup.search, setup.folder, setup.budget
    # One row per candidate (its best): workers sampling one point at once each train it.
    best_rows: dict[str, dict] = {}
    for row in sorted(_trial_rows(study, completed_only=True), key=lambda row: -row["int8_miou"]):
        best_rows.setdefault(row["label"], row)
    front = sorted(pareto_front(list(best_rows.values()), "latency_ms"), key=lambda row: -row["int8_miou"])
    trained = []
    for row in front[: search.finalists]:
        candidate = Candidate.from_dict(row["candidate"])
        log.info(
            "search: finalist %s (trial %d, proxy int8 mIoU %.4f): the full schedule",
            candidate.label,
            row["trial"],
            row["int8_miou"],
        )
        result = run(
            candidate_recipe(recipe, candidate, f"final-{row['trial']:03d}", epochs=None),
            folder,
            resume=True,
            reuse_from=_run_folders(folder),
        )
        trained.append((row, result))
    if not trained:
        return [], family, "none measured: no trial completed"
    log.info("search: timing %d finalists and %d naive models", len(trained), len(family))
    # One timing for both, which also judges the budget: the naive files make its load the same for all.
    models = {str(row["trial"]): (Path(result.run_dir) / "model.tflite").read_bytes() for row, result in trained}
    models.update({point["label"]: Path(point["model_path"]).read_bytes() for point in family})
    latencies, timing = latencies_together(models, budget, setup.reference)
    finalists = []
    for row, result in trained:
        verify, export = result.required_record("verify"), result.required_record("export")
        # Sizes on the frontier are the int8 file as converted, as for the trials and the naive family;
        # the size budget is judged on the export, edgeseg's metadata included: the file an app ships.
        measured = {
            **row["costs"],
            "bytes": verify["bytes"],
            "gzip_bytes": verify["gzip_bytes"],
            "export_bytes": export["bytes"],
            "export_gzip_bytes": export["gzip_bytes"],
            **latency_costs(latencies[str(row["trial"])], setup.reference),
        }
        over = budget_violations({**measured, "bytes": export["bytes"], "gzip_bytes": export["gzip_bytes"]}, budget)
        miou = verify["quantized"]["miou"]
        if budget.min_miou is not None and miou < budget.min_miou:
            over.append(f"int8 mIoU {miou:.4f} < {budget.min_miou:g}")
        finalists.append(
            {
                **row,
                **measured,
                "proxy_int8_miou": row["int8_miou"],
                "int8_miou": miou,
                "full": True,
                "run_dir": str(result.run_dir),
                "over_budget": over,
            }
        )
    return finalists, [{**point, "latency_ms": latencies[point["label"]]} for point in family], timing


def _shortfall(row: dict) -> list[str]:
    """Why a trial or finalist was not chosen: the limits it exceeds, its error, or neither."""
    if row.get("over_budget"):
        return row["over_budget"]
    return [row["error"]] if row.get("error") else ["trained on the proxy schedule only: not among the finalists"]


def _trial_rows(study, completed_only: bool = False) -> list[dict]:
    import optuna

    rows = []
    for trial in study.trials:
        if completed_only and trial.state != optuna.trial.TrialState.COMPLETE:
            continue
        if not _done(trial):
            continue
        costs = trial.user_attrs.get("costs", {})
        rows.append(
            {
                "trial": trial.number,
                "state": trial.state.name.lower(),
                "label": trial.user_attrs.get("label"),
                "candidate": trial.user_attrs.get("candidate"),
                "costs": costs,
                "latency_ms": costs.get("latency_ms"),
                "bytes": costs.get("bytes"),
                "int8_miou": trial.user_attrs.get("int8_miou"),
                "over_budget": trial.user_attrs.get("over_budget"),
                "run_dir": trial.user_attrs.get("run_dir"),
                "error": trial.user_attrs.get("error"),
                "repeat_of": trial.user_attrs.get("repeat_of"),
                "full": False,
            }
        )
    return rows


# Workers started together on a new storage each create its tables, and all but the first fail
# (optuna/optuna#1092; Optuna's advice is to create the study before starting them): retried.
STUDY_OPEN_ATTEMPTS = 5


def _with_stored_scale(study, setup: SearchSetup) -> SearchSetup:
    """`setup` with the reference timing the study holds now: workers started together each store
    their first timing, and the one stored last becomes every worker's scale."""
    stored = study.user_attrs[REFERENCE_ATTR]["latency_ms"]
    return replace(setup, reference=replace(setup.reference, latency_ms=stored))


def _open_study(name: str, storage: str, proxy_epochs: int):
    """The search's Optuna study in `storage`, created by the first worker, loaded by the others."""
    import optuna
    import sqlalchemy.exc

    def create():
        with _heartbeat_api():
            beating = optuna.storages.RDBStorage(
                storage,
                heartbeat_interval=HEARTBEAT_SECONDS,
                grace_period=STALE_AFTER_SECONDS,
                heartbeat_stale_trial_callback=optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=STALE_RETRIES),
            )
        return optuna.create_study(
            study_name=name, storage=beating, load_if_exists=True, direction="maximize", pruner=proxy_pruner(proxy_epochs)
        )

    for attempt in range(STUDY_OPEN_ATTEMPTS - 1):
        try:
            return create()
        except sqlalchemy.exc.SQLAlchemyError as error:
            log.info("search: the storage is being set up by another worker; trying again (%s)", str(error).splitlines()[0])
            time.sleep(1 + attempt)
    try:
        return create()
    except sqlalchemy.exc.SQLAlchemyError as error:
        raise EdgesegError(f"search.storage {storage}: cannot open the study: {str(error).splitlines()[0]}") from None


def proxy_pruner(proxy_epochs: int):
    """Optuna's median pruner as a search uses it: judged from the middle of the proxy training on
    (its first epochs are mostly learning-rate warm-up, and on CamVid trials stopped at epoch 1
    scored 0.04-0.07, the majority class alone), once three trials reported that epoch. Counted by
    `n_min_trials`, not `n_startup_trials`: a repeat is a completed trial that trained nothing, and
    would count towards the startup."""
    import optuna

    return optuna.pruners.MedianPruner(n_startup_trials=0, n_warmup_steps=(proxy_epochs + 1) // 2, n_min_trials=3)


def _done(trial) -> bool:
    """Completed, pruned, or failed with a recorded error; not a trial that was interrupted."""
    import optuna

    states = optuna.trial.TrialState
    return trial.state in (states.COMPLETE, states.PRUNED) or (trial.state == states.FAIL and "error" in trial.user_attrs)


def _distinct_choices(recipe: Recipe) -> dict[str, list]:
    """The search space's choices with any value a recipe lists twice counted once."""
    return {name: list(dict.fromkeys(values)) for name, values in space_choices(recipe).items()}


def _candidate_key(trial) -> tuple:
    """What makes two trials the same candidate: their parameters."""
    return tuple(sorted(trial.params.items()))


def _distinct_done(study) -> int:
    """Distinct candidates among the done trials (`_done`)."""
    return len({_candidate_key(trial) for trial in study.trials if _done(trial)})


def _run_folders(folder: Path) -> list[Path]:
    """Every trial's run folder: candidates share the teacher's training, which the first trains."""
    return sorted(path for path in folder.iterdir() if path.is_dir() and path.name.startswith(("trial-", "final-")))


def _progress(study, done: int, wanted: int, elapsed: float, measured_here: int) -> None:
    """Candidates done and wanted, the best so far, and the time the remaining ones should take at
    the pace of those this process measured (finalists not included)."""
    import optuna

    completed = [trial for trial in study.trials if trial.state == optuna.trial.TrialState.COMPLETE]
    best = max(completed, key=lambda trial: trial.value, default=None)
    trained = len({_candidate_key(trial) for trial in completed})
    left = (
        f"about {elapsed / measured_here * (wanted - done) / 60:.0f} min of trials left"
        if measured_here
        else "time left unknown yet"
    )
    log.info(
        "search: candidate %d of %d (%d trained, %d over budget, stopped or failed); best so far %s; %s",
        done + 1,
        wanted,
        trained,
        done - trained,
        f"{best.value:.4f} ({best.user_attrs.get('label')})" if best else "none",
        left,
    )
