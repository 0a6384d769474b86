"""How a search starts and resumes its Optuna study, on in-memory studies (no training, no timing):
the recipe's own model as a trial until one has taken it, and one latency scale for the study."""

import threading
import time
from pathlib import Path

import optuna
import pytest

from edgeseg.errors import RecipeError, StageError
from edgeseg.recipe import BudgetConfig, parse_recipe
from edgeseg.search import study as search_study
from edgeseg.search.candidates import LatencyReference, recipe_params, sample_candidate
from tests.helpers import tiny_recipe_dict


def recipe():
    return parse_recipe(
        tiny_recipe_dict(
            budget={"latency_vs_recipe": 1.0},
            search={
                "trials": 3,
                "proxy_epochs": 1,
                "finalists": 1,
                "space": {"alpha": [1.0, 0.75, 0.5, 0.35], "output_stride": [32, 16]},
            },
        )
    )


def new_study():
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna.create_study(study_name="tiny", direction="maximize", sampler=optuna.samplers.TPESampler(seed=0))


def test_the_recipe_own_model_is_enqueued_until_a_trial_has_taken_it():
    study, own = new_study(), recipe_params(recipe())
    search_study._enqueue_first_points(study, recipe(), whole_space=False)
    search_study._enqueue_first_points(study, recipe(), whole_space=False)
    assert len(study.trials) == 1, "waiting: not enqueued twice"
    interrupted = study.ask()
    sample_candidate(interrupted, recipe())
    assert interrupted.params == own
    study.tell(interrupted, state=optuna.trial.TrialState.FAIL)  # Ctrl-C during it: no recorded error
    search_study._enqueue_first_points(study, recipe(), whole_space=False)
    again = study.ask()
    sample_candidate(again, recipe())
    assert again.params == own, "an interrupted trial does not count as taken"
    study.tell(again, 0.5)
    search_study._enqueue_first_points(study, recipe(), whole_space=False)
    assert [trial.state for trial in study.trials].count(optuna.trial.TrialState.WAITING) == 0


def test_a_study_keeps_its_latency_scale_and_refuses_other_latency_settings(monkeypatch):
    timed = []

    def first_timing(recipe, budget, latency_ms=None):
        timed.append(latency_ms)
        return LatencyReference(b"", 2.0 + len(timed) if latency_ms is None else latency_ms, "own")

    monkeypatch.setattr(search_study, "latency_reference", first_timing)
    study, budget = new_study(), BudgetConfig(threads=2)
    assert search_study._shared_reference(study, recipe(), budget).latency_ms == 3.0
    assert search_study._shared_reference(study, recipe(), budget).latency_ms == 3.0, "resumed: the stored timing"
    assert timed == [None, 3.0]
    with pytest.raises(RecipeError) as caught:
        search_study._shared_reference(study, recipe(), BudgetConfig(threads=1))
    assert "threads 2, now 1" in str(caught.value) and "start a new study" in str(caught.value)


def test_a_study_with_trials_timed_before_the_reference_is_refused(monkeypatch):
    monkeypatch.setattr(search_study, "latency_reference", lambda *args: pytest.fail("must refuse before timing"))
    study = new_study()
    study.tell(study.ask(), 0.3)
    with pytest.raises(RecipeError, match="holds trials timed alone"):
        search_study._shared_reference(study, recipe(), BudgetConfig())


def test_a_candidate_sampled_again_takes_the_earlier_outcome_without_training_and_does_not_count(monkeypatch):
    monkeypatch.setattr(search_study, "untrained_costs", lambda *args: pytest.fail("a repeat is not measured again"))
    monkeypatch.setattr("edgeseg.pipeline.run", lambda *args, **kwargs: pytest.fail("a repeat is not trained again"))
    searched = recipe()
    study = new_study()
    first = study.ask()
    sample_candidate(first, searched)
    first.set_user_attr("int8_miou", 0.4)
    first.set_user_attr("run_dir", "runs/trial-000")
    study.tell(first, 0.4)
    study.enqueue_trial(first.params)
    setup = search_study.SearchSetup(
        searched, searched.search, BudgetConfig(), Path("runs"), "distill", LatencyReference(b"", 1.0, "own")
    )
    again = study.ask()
    assert search_study._evaluate(again, setup) == 0.4
    assert again.user_attrs["run_dir"] == "runs/trial-000" and again.user_attrs["repeat_of"] == 0
    study.tell(again, 0.4)
    assert search_study._distinct_done(study) == 1, "the repeat does not count as a candidate"


def test_a_space_no_larger_than_the_trials_is_enqueued_whole_the_recipe_model_first():
    small = recipe()
    study = new_study()
    search_study._enqueue_first_points(study, small, whole_space=True)
    search_study._enqueue_first_points(study, small, whole_space=True)
    points = [trial.system_attrs["fixed_params"] for trial in study.trials]
    assert len(points) == 16 and points[0] == recipe_params(small), "4 alphas x 2 strides x 2 heads, each once"
    assert len({tuple(sorted(point.items())) for point in points}) == 16


def test_a_repeat_of_a_trial_stopped_early_is_stopped_too(monkeypatch):
    monkeypatch.setattr("edgeseg.pipeline.run", lambda *args, **kwargs: pytest.fail("a repeat is not trained again"))
    searched = recipe()
    study = new_study()
    stopped = study.ask()
    sample_candidate(stopped, searched)
    stopped.report(0.1, 1)
    study.tell(stopped, state=optuna.trial.TrialState.PRUNED)
    assert study.trials[0].value == 0.1, "Optuna keeps the last reported score as a stopped trial's value"
    study.enqueue_trial(stopped.params)
    reference = LatencyReference(b"", 1.0, "own")
    setup = search_study.SearchSetup(searched, searched.search, BudgetConfig(), Path("runs"), "distill", reference)
    assert search_study._evaluate(study.ask(), setup) is None


def test_the_pruner_waits_for_three_trained_candidates_not_for_repeats():
    study = optuna.create_study(direction="maximize", pruner=search_study.proxy_pruner(proxy_epochs=2))

    def trained(score):
        trial = study.ask()
        trial.report(score, 1)
        study.tell(trial, score)

    def hopeless():
        trial = study.ask()
        trial.report(0.01, 1)
        stopped = trial.should_prune()
        study.tell(trial, state=optuna.trial.TrialState.PRUNED)
        return stopped

    trained(0.30), trained(0.32)
    for _ in range(2):
        study.tell(study.ask(), 0.32)  # repeats: completed, nothing reported
    assert not hopeless(), "two trained candidates and two repeats: too few to judge"
    trained(0.31)
    assert hopeless()


def beating_study(tmp_path, monkeypatch):
    """A study as a search opens it, with a heartbeat of 1 s and trials stale after 2 s."""
    monkeypatch.setattr(search_study, "HEARTBEAT_SECONDS", 1)
    monkeypatch.setattr(search_study, "STALE_AFTER_SECONDS", 2)
    monkeypatch.setattr(search_study, "TWIN_POLL_SECONDS", 0.2)
    return search_study._open_study("tiny", f"sqlite:///{tmp_path / 'study.db'}", proxy_epochs=1)


def running_elsewhere(study, searched):
    """A trial as another worker holds it while it trains: running, sampled, its heartbeat recorded."""
    trial = study.ask()
    sample_candidate(trial, searched)
    trial.set_user_attr(search_study.HEARTBEAT_ATTR, True)
    study._storage.record_heartbeat(trial._trial_id)  # what the worker's heartbeat thread does
    study.enqueue_trial(trial.params)
    return trial


@pytest.mark.filterwarnings("ignore:Heartbeat of storage")  # the other worker's ask, simulated
def test_a_candidate_running_in_another_worker_is_waited_for_and_its_outcome_taken(tmp_path, monkeypatch):
    monkeypatch.setattr(search_study, "untrained_costs", lambda *args: pytest.fail("measured twice"))
    searched, study = recipe(), beating_study(tmp_path, monkeypatch)
    first = running_elsewhere(study, searched)

    def first_finishes():
        first.set_user_attr("int8_miou", 0.4)
        study.tell(first, 0.4)

    threading.Timer(0.5, first_finishes).start()
    setup = search_study.SearchSetup(
        searched, searched.search, BudgetConfig(), tmp_path, "distill", LatencyReference(b"", 1.0, "own")
    )
    again, started = study.ask(), time.perf_counter()
    assert search_study._evaluate(again, setup) == 0.4
    assert time.perf_counter() - started >= 0.4, "it waited for the twin to finish"
    assert again.user_attrs["repeat_of"] == first.number and again.user_attrs["int8_miou"] == 0.4


@pytest.mark.filterwarnings("ignore:Heartbeat of storage")  # the other worker's ask, simulated
def test_a_twin_whose_worker_died_is_failed_by_its_heartbeat_and_the_candidate_measured(tmp_path, monkeypatch):
    class Measured(Exception):
        pass

    def measure(*args):
        raise Measured

    monkeypatch.setattr(search_study, "untrained_costs", measure)
    searched, study = recipe(), beating_study(tmp_path, monkeypatch)
    dead = running_elsewhere(study, searched)  # no more heartbeats: its worker was killed
    setup = search_study.SearchSetup(
        searched, searched.search, BudgetConfig(), tmp_path, "distill", LatencyReference(b"", 1.0, "own")
    )
    started = time.perf_counter()
    with pytest.raises(Measured):
        search_study._evaluate(study.ask(), setup)
    assert 2 <= time.perf_counter() - started < 30, "waited for the grace period, then measured"
    assert study.trials[dead.number].state == optuna.trial.TrialState.FAIL
    retried = study.trials[-1]
    assert retried.state == optuna.trial.TrialState.WAITING and retried.params == dead.params, "queued again"


@pytest.mark.parametrize(
    ("outcome", "state"),
    [(0.4, "COMPLETE"), (None, "PRUNED"), (StageError("quantize: no calibration images"), "FAIL")],
)
def test_a_trial_run_tells_optuna_its_outcome_and_records_a_stage_error(tmp_path, monkeypatch, outcome, state):
    def evaluate(trial, setup):
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    monkeypatch.setattr(search_study, "_evaluate", evaluate)
    study = beating_study(tmp_path, monkeypatch)
    search_study._run_trial(study, setup=None)
    trial = study.trials[0]
    assert trial.state == optuna.trial.TrialState[state] and trial.user_attrs[search_study.HEARTBEAT_ATTR]
    assert trial.user_attrs.get("error") == (str(outcome) if state == "FAIL" else None)
    assert search_study._done(trial)


def test_a_trial_failed_by_another_worker_while_it_ran_ends_with_a_warning_not_a_traceback(tmp_path, monkeypatch, caplog):
    def failed_elsewhere(trial, setup):
        study._storage.set_trial_state_values(trial._trial_id, state=optuna.trial.TrialState.FAIL)  # what fail_stale_trials does
        trial.set_user_attr("int8_miou", 0.4)
        return 0.4

    monkeypatch.setattr(search_study, "_evaluate", failed_elsewhere)
    study = beating_study(tmp_path, monkeypatch)
    search_study._run_trial(study, setup=None)
    assert "trial 0 was failed by another worker" in caplog.text
    assert not search_study._done(study.trials[0]), "not done: its candidate is measured again"


def test_a_bug_in_a_trial_is_raised_not_taken_for_another_worker(tmp_path, monkeypatch):
    def broken(trial, setup):
        raise ValueError("a bug")

    monkeypatch.setattr(search_study, "_evaluate", broken)
    study = beating_study(tmp_path, monkeypatch)
    with pytest.raises(ValueError, match="a bug"):
        search_study._run_trial(study, setup=None)
    assert study.trials[0].state == optuna.trial.TrialState.FAIL
