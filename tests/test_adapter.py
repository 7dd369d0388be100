"""Pins the Optuna and Ray internals `study.adapter` relies on: an upgrade that changes them fails here."""

from __future__ import annotations

import os

import optuna
import pytest

from study.adapter import RAY_ENVIRONMENT, GridSampler, configure_ray_environment, fail_trial, optuna_search_base

optuna.logging.set_verbosity(optuna.logging.WARNING)
TrialState = optuna.trial.TrialState


def test_fail_trial_finishes_a_running_trial_of_another_process_with_its_reason(tmp_path):
    url = f"sqlite:///{tmp_path / 's.db'}"
    optuna.create_study(storage=url, study_name="s").ask()        # left RUNNING by "another driver"
    study = optuna.load_study(study_name="s", storage=url)          # this process never handed it out
    (running,) = study.get_trials(states=(TrialState.RUNNING,))
    fail_trial(study, running, "because")
    (trial,) = optuna.load_study(study_name="s", storage=url).trials
    assert trial.state == TrialState.FAIL and trial.user_attrs == {"fail_reason": "because"}


def test_importing_equiscale_sets_no_environment_variables():
    import subprocess
    import sys

    code = ("import os; before = dict(os.environ); import study.pipeline, study.tune, study.cli, analysis.trials; "
            "print(sorted(set(os.environ.items()) ^ set(before.items())))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_configure_keeps_what_the_user_set(monkeypatch):
    monkeypatch.setenv("RAY_DEDUP_LOGS", "1")
    for key in RAY_ENVIRONMENT:
        if key != "RAY_DEDUP_LOGS":
            monkeypatch.delenv(key, raising=False)
    configure_ray_environment()
    assert os.environ["RAY_DEDUP_LOGS"] == "1" and os.environ["RAY_worker_niceness"] == "0"


@pytest.mark.slow  # imports ray.tune
def test_optuna_search_internals_hand_out_and_finish_storage_trials(tmp_path):
    url = f"sqlite:///{tmp_path / 's.db'}"
    storage = optuna.storages.RDBStorage(url)

    def space(trial):
        trial.suggest_float("x", 0.0, 1.0)
        return {"constant": 3}

    search = optuna_search_base()(space=space, metric="loss", mode="min", storage=storage, study_name="s",
                                  sampler=optuna.samplers.RandomSampler(seed=0))
    config = search.suggest("a")
    assert config["constant"] == 3 and 0 <= config["x"] <= 1      # define-by-run constants come through
    live = search.study_trial("a")
    assert isinstance(live, optuna.Trial) and live.params == {"x": config["x"]}
    assert search.study_trial("b") is None and not search.ended("a")
    live.report(0.5, 10)
    search.tell("a", value=0.25, state=TrialState.COMPLETE)
    assert search.ended("a")
    search.on_trial_complete("a", result={"loss": 9.0})              # Ray's own completion is then a no-op
    (trial,) = optuna.load_study(study_name="s", storage=url).trials
    assert trial.state == TrialState.COMPLETE and trial.value == 0.25 and trial.intermediate_values == {10: 0.5}


def test_grid_sampler_visits_every_point_once_under_ask_and_tell():
    grid = {"x": [1.0, 2.0, 3.0], "y": [0]}
    study = optuna.create_study(sampler=GridSampler(grid, seed=0))
    seen = []
    for _ in range(3):
        trial = study.ask()
        seen.append(trial.suggest_float("x", 0.0, 5.0))
        trial.suggest_int("y", 0, 1)
        study.tell(trial, 0.0)                                       # Optuna's own GridSampler raises here
    assert sorted(seen) == [1.0, 2.0, 3.0]


@pytest.mark.parametrize("seed", range(10))   # Optuna's own sampler re-hands it for about 3 seeds in 10
def test_grid_sampler_hands_a_failed_point_out_again(seed):
    grid = {"x": [1.0, 2.0, 3.0]}
    study = optuna.create_study(sampler=GridSampler(grid, seed=seed))
    first = study.ask()
    lost = first.suggest_float("x", 0.0, 5.0)
    study.tell(first, state=TrialState.FAIL)                          # e.g. its driver was killed
    done = []
    for _ in range(3):
        trial = study.ask()
        done.append(trial.suggest_float("x", 0.0, 5.0))
        study.tell(trial, 0.0)
    assert lost in done and sorted(done) == [1.0, 2.0, 3.0]          # Optuna's own would repeat a done point


@pytest.mark.parametrize("seeds", [(0, 1), (3, 7), (5, 2)])
def test_a_resumed_grid_with_another_seed_trains_only_the_points_not_yet_trained(tmp_path, seeds):
    """A resumed run builds its sampler with another seed (the trial count is in it), so the grid is shuffled
    differently and stored grid ids name other points: the points still missing must be the ones handed out."""
    url = f"sqlite:///{tmp_path / 'grid.db'}"
    grid = {"x": [1.0, 2.0, 3.0, 4.0, 5.0], "lr": [0.01]}
    trained = []

    def train(sampler, n):
        study = optuna.load_study(study_name="g", storage=url, sampler=sampler)
        for _ in range(n):
            trial = study.ask()
            trained.append(trial.suggest_float("x", 0.0, 9.0))
            trial.suggest_float("lr", 1e-3, 1.0, log=True)
            study.tell(trial, 0.0)

    optuna.create_study(study_name="g", storage=url)
    train(GridSampler(grid, seed=seeds[0]), 2)                          # the first run: 2 points, then stopped
    train(GridSampler(grid, seed=seeds[1]), 3)                          # the resumed run: the 3 others
    assert sorted(trained) == [1.0, 2.0, 3.0, 4.0, 5.0]
