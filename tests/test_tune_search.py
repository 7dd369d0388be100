"""The per-study OptunaSearch subclass and the multi-study searcher, driven by hand (no Ray cluster)."""

from __future__ import annotations

import dataclasses
import math

import optuna
import pytest

from study.config import TrainingConfig, load_config, study_name, study_spec
from study.progress import Progress
from study.records import TrainResult, TrialPlan
from study.tune import METRIC, _multi_searcher_class, _space, _study_search_class, plan_defaults

TrialState = optuna.trial.TrialState
pytestmark = pytest.mark.slow  # importing ray.tune alone takes seconds


@pytest.fixture
def searchers(tmp_path):
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    config = dataclasses.replace(load_config(), training=TrainingConfig())   # one batch, the wide step limits
    storage = optuna.storages.RDBStorage(f"sqlite:///{tmp_path / 's.db'}")
    progress = Progress(enabled=False)
    StudySearch = _study_search_class()
    made = {}
    for family, budget in (("transformer", 1e10), ("gatr", 2e10)):
        spec = study_spec(config, family, budget)
        name = spec.name
        progress.add_study(name, complete=0, target=2)
        made[name] = StudySearch(name=name, space=_space(spec), storage=storage,
                                 defaults=plan_defaults(spec, config.resources), progress=progress,
                                 sampler=optuna.samplers.RandomSampler(seed=0))
    return storage, made


def _final(plan: TrialPlan, val: float) -> dict:
    result = TrainResult(val_loss=val, test_loss=2 * val, train_loss=val, equivariance_error=0.1,
                         params=plan.params, steps=plan.steps, samples=plan.samples, epochs=1.5,
                         train_seconds=1.0, wall_seconds=1.5, node="here")
    return {METRIC: val, "step": plan.steps, "result": result}


def test_finished_trial_is_complete_with_the_contract_attributes_and_curve(searchers):
    storage, made = searchers
    search = made["transformer/1e+10"]
    (plan,) = search.suggest("a").values()
    assert isinstance(plan, TrialPlan) and plan.family == "transformer" and plan.budget == 1e10
    search.on_trial_result("a", {METRIC: 0.5, "step": 10})
    search.on_trial_result("a", {METRIC: 0.3, "step": plan.steps})
    search.on_trial_complete("a", result=_final(plan, 0.3))
    (trial,) = optuna.load_study(study_name="transformer/1e+10", storage=storage).trials
    assert trial.state == TrialState.COMPLETE and trial.value == 0.3
    assert trial.intermediate_values == {10: 0.5, plan.steps: 0.3}
    a = trial.user_attrs
    assert a["samples"] == plan.steps * plan.batch_size and a["shape"] == plan.shape
    assert a["flops_used"] == pytest.approx(plan.step_flops * plan.steps)
    assert a["nominal_flops"] == pytest.approx(3 * plan.forward_flops * a["samples"])
    assert a["params"] == plan.params and a["lr"] == trial.params["lr"] == plan.lr and a["node"] == "here"
    assert a["epochs"] == 1.5 and a["test_loss"] == 0.6 and a["measured_params"] == plan.params


@pytest.mark.parametrize("result, error, reason", [
    ({METRIC: math.nan, "step": 7, "failed": "diverged at step 7: training loss nan"}, False, "diverged"),
    ({METRIC: 0.4, "step": 10}, False, "stopped early"),  # no final result  # a truncated run must not count as COMPLETE
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
    studies = [study_name(p.family, p.budget) for i in range(4) for p in multi.suggest(f"t{i}").values()]
    assert sorted(studies) == ["gatr/2e+10"] + ["transformer/1e+10"] * 3
    assert studies[0] == "transformer/1e+10"  # the study with most to go first
    assert multi.suggest("t4") == Searcher.FINISHED
