"""The per-study OptunaSearch subclass and the multi-study searcher, driven by hand (no Ray cluster)."""

from __future__ import annotations

import math

import optuna
import pytest

from study.config import load_config, study_name
from study.progress import Progress
from study.tune import METRIC, _constants, _multi_searcher_class, _optuna_search_class, _space

TrialState = optuna.trial.TrialState
pytestmark = pytest.mark.slow  # importing ray.tune alone takes seconds


@pytest.fixture
def searchers(tmp_path):
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    config = load_config()
    storage = optuna.storages.RDBStorage(f"sqlite:///{tmp_path / 's.db'}")
    progress = Progress(enabled=False)
    StudySearch = _optuna_search_class()
    made = {}
    for family, budget in (("transformer", 1e10), ("gatr", 2e10)):
        name = study_name(family, budget)
        progress.add_study(name, complete=0, target=2)
        made[name] = StudySearch(name=name, space=_space(family, budget, config), storage=storage,
                                 constants=_constants(family, budget, config), progress=progress,
                                 sampler=optuna.samplers.RandomSampler(seed=0))
    return storage, made


def _final(config: dict, val: float) -> dict:
    return {METRIC: val, "final": True, "samples": config["steps"] * config["batch_size"], "steps": config["steps"],
            "test_loss": 2 * val, "train_loss": val, "wall_seconds": 1.5, "equivariance_error": 0.1,
            "node": "here", "params": config["params"]}


def test_finished_trial_is_complete_with_the_contract_attributes_and_curve(searchers):
    storage, made = searchers
    search = made["transformer/1e+10"]
    config = search.suggest("a")
    assert config["family"] == "transformer" and config["study"] == "transformer/1e+10"
    search.on_trial_result("a", {METRIC: 0.5, "step": 10})
    search.on_trial_result("a", {METRIC: 0.3, "step": config["steps"]})
    search.on_trial_complete("a", result=_final(config, 0.3))
    (trial,) = optuna.load_study(study_name="transformer/1e+10", storage=storage).trials
    assert trial.state == TrialState.COMPLETE and trial.value == 0.3
    assert trial.intermediate_values == {10: 0.5, config["steps"]: 0.3}
    a = trial.user_attrs
    assert a["samples"] == config["steps"] * config["batch_size"] and a["shape"] == config["shape"]
    assert a["flops_used"] == pytest.approx(3 * config["flops_per_sample"] * a["samples"])
    assert a["params"] == config["params"] and a["lr"] == trial.params["lr"] and a["node"] == "here"


@pytest.mark.parametrize("result, error, reason", [
    ({METRIC: math.nan, "step": 7, "failed": "diverged at step 7: training loss nan"}, False, "diverged"),
    ({METRIC: 0.4, "step": 10}, False, "stopped early"),  # a truncated run must not count as COMPLETE
    (None, True, "worker error"),
])
def test_unfinished_trials_fail_with_their_reason(searchers, result, error, reason):
    storage, made = searchers
    search = made["gatr/2e+10"]
    search.suggest("b")
    search.on_trial_complete("b", result=result, error=error)
    (trial,) = optuna.load_study(study_name="gatr/2e+10", storage=storage).trials
    assert trial.state == TrialState.FAIL and reason in trial.user_attrs["fail_reason"]


def test_multi_study_searcher_hands_out_each_study_its_remaining_trials(searchers):
    from ray.tune.search import Searcher

    _, made = searchers
    multi = _multi_searcher_class()(made, {"transformer/1e+10": 3, "gatr/2e+10": 1})
    studies = [multi.suggest(f"t{i}")["study"] for i in range(4)]
    assert sorted(studies) == ["gatr/2e+10"] + ["transformer/1e+10"] * 3
    assert studies[0] == "transformer/1e+10"  # the study with most to go first
    assert multi.suggest("t4") == Searcher.FINISHED
