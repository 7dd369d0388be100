"""End to end through Ray Tune: a tiny study per (family, budget) lands in SQLite with the contract's attributes."""

from __future__ import annotations

import math

import optuna
import pytest

from study.benchmark import load_dataset
from study.config import settings, study_name
from study.flops import forward_flops, param_count, step_flops
from study.pipeline import run_study
from tests.tiny import tiny_config

pytestmark = pytest.mark.slow


def test_tiny_study_through_ray_stores_complete_trials_with_their_attributes(tmp_path, ray_tmpdir):
    config = tiny_config(f"sqlite:///{tmp_path / 'study.db'}")
    summary = run_study(config, cache_dir=tmp_path / "cache")
    assert summary.short == () and [r.complete for r in summary.rows] == [3, 3, 3, 3]
    assert {r.study for r in summary.rows} == {study_name(f, b) for f, b in config.studies()}
    dataset = load_dataset(config.data.benchmark(), cache_dir=tmp_path / "cache")

    t = config.training
    for family, budget in config.studies():
        study = optuna.load_study(study_name=study_name(family, budget), storage=config.storage)
        stored = dict(study.user_attrs)
        assert stored.pop("settings") == settings(config)
        assert stored.pop("claims") == {"equivariant": "gatr", "baselines": ["transformer", "transformer-aug"],
                                        "augmented": "transformer-aug"}   # the flagship's, the study file gave none
        assert stored == {"family": family, "budget": budget, "batch_size": t.batch_size,
                          "dataset_key": dataset.key, "target_trials": 3}
        complete = study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
        assert len(complete) == 3 == len(study.trials)
        for trial in complete:
            a = trial.user_attrs
            f = forward_flops(family, bodies=3, **a["shape"])
            assert a["params"] == param_count(family, **a["shape"]) == a["measured_params"]
            assert a["samples"] == a["steps"] * t.batch_size
            assert t.min_steps <= a["steps"] <= t.max_steps
            assert a["flops_used"] == pytest.approx(
                a["steps"] * step_flops(family, batch_size=t.batch_size, bodies=3, **a["shape"]))
            assert a["nominal_flops"] == pytest.approx(3 * f * a["samples"]) and a["flops_per_sample"] == f
            assert abs(a["flops_used"] / budget - 1) <= 0.01
            assert a["epochs"] == pytest.approx(a["samples"] / len(dataset.train))
            assert trial.value == a["val_loss"] and math.isfinite(a["test_loss"])
            assert a["lr"] == trial.params["lr"] and a["wall_seconds"] > 0 and a["node"]
            assert a["equivariance_error"] < 1e-3 if family == "gatr" else a["equivariance_error"] > 1e-3
            curve = trial.intermediate_values
            assert max(curve) == a["steps"] and len(curve) == t.evals  # learning curve at training steps
            assert curve[a["steps"]] == trial.value
