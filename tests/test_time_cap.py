"""The time cap per run (`training.time_cap_seconds`): parsed and checked, carried to every trial's plan, counted
by the pre-run estimate, and (slow) a capped trial of a tiny study through Ray ends FAIL saying so."""

from __future__ import annotations

import math
from dataclasses import replace

import optuna
import pytest

from study.config import TrainingConfig, load_config, resolve, validate
from study.errors import ConfigError
from study.estimate import UTILISATION, estimate
from study.tune import plan_defaults
from tests.tiny import tiny_config


def test_the_cap_reaches_every_trials_plan_and_absent_or_zero_means_none(tmp_path):
    config = tiny_config(f"sqlite:///{tmp_path / 'x.db'}")
    for cap, planned in ((0.0, math.inf), (42.0, 42.0)):
        run = resolve(replace(config, training=replace(config.training, time_cap_seconds=cap)))
        for spec in run.studies:
            assert plan_defaults(spec, run.resources).time_cap_seconds == planned
    assert TrainingConfig().time_cap_seconds == 0.0


@pytest.mark.parametrize("value", ["-1", "nan", '"long"'])
def test_a_bad_time_cap_is_one_config_error(tmp_path, value):
    path = tmp_path / "bad.toml"
    path.write_text(f'families = ["gatr"]\nbudgets = [1e10]\n[training]\ntime_cap_seconds = {value}\n')
    with pytest.raises(ConfigError, match="time_cap_seconds"):
        load_config(path)


def test_the_estimate_counts_the_runs_expected_past_the_cap(tmp_path):
    config = tiny_config(f"sqlite:///{tmp_path / 'x.db'}", budgets=(1e9, 2e9), trials=3)
    rate = 1e6                                       # FLOP/s per thread: a 1e9-FLOP run takes 1e9 / (1e6 x 0.3) s
    one = 1e9 / (rate * UTILISATION)
    for cap, over in ((one * 1.5, 3 * 2), (one * 0.5, 3 * 4), (one * 2.5, 0)):   # 2 families x 3 trials per budget
        capped = replace(config, training=replace(config.training, time_cap_seconds=cap))
        validate(capped)
        cost = estimate(resolve(capped), rate=rate)
        assert cost.over_cap == over and cost.time_cap == cap
        assert f"{over} of them expected past the time cap of {cap:g} s" in cost.line()
    assert "time cap" not in estimate(resolve(config), rate=rate).line()


@pytest.mark.slow
def test_a_capped_trial_ends_fail_saying_time_cap_and_the_run_goes_on(tmp_path, ray_tmpdir):
    from study.pipeline import run_study

    url = f"sqlite:///{tmp_path / 'cap.db'}"
    config = tiny_config(url, families=("transformer",), budgets=(1e9,), trials=2)
    capped = replace(config, training=replace(config.training, time_cap_seconds=1e-9))
    summary = run_study(capped, cache_dir=tmp_path / "cache")
    study = optuna.load_study(study_name="transformer/1e+09", storage=url)
    assert study.trials and not study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
    for trial in study.trials:
        assert trial.state == optuna.trial.TrialState.FAIL
        assert trial.user_attrs["fail_reason"].startswith("time cap of 1e-09 s passed after step 1 of ")
    assert summary.short == ("transformer/1e+09",)
    again = run_study(config, cache_dir=tmp_path / "cache")       # uncapped, the same storage: trains its trials
    assert again.short == () and [r.complete for r in again.rows] == [2]
