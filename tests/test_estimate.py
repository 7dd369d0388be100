"""The pre-run estimate times a study at the rate its stored trials reached (stacked trials sharing their slot),
a study without any at its family's nearest budget, and a family without any at the peak-fraction guess."""

from __future__ import annotations

import optuna
import pytest

from study.config import resolve
from study.estimate import UTILISATION, estimate, measured
from study.schema import FLOPS_USED, STACKED_WITH, WALL_SECONDS
from tests.tiny import tiny_config


def _trial(flops: float, wall: float, *, stacked_with=(), state=optuna.trial.TrialState.COMPLETE):
    attrs = {FLOPS_USED: flops, WALL_SECONDS: wall}
    if stacked_with:
        attrs[STACKED_WITH] = list(stacked_with)
    return optuna.trial.create_trial(state=state, value=0.1 if state == optuna.trial.TrialState.COMPLETE else None,
                                     user_attrs=attrs)


def test_a_stacked_groups_shares_add_up_to_its_slot_seconds_and_failed_trials_do_not_count():
    # two trials of 1e9 FLOPs trained together in 10 s (each stores its share, 5 s), one alone in 5 s:
    # 3e9 FLOPs in 10 + 5 slot-seconds; each stacked trial lasted its group's 10 s
    trials = [_trial(1e9, 5.0, stacked_with=[1]), _trial(1e9, 5.0, stacked_with=[0]), _trial(1e9, 5.0),
              _trial(1e12, 1.0, state=optuna.trial.TrialState.FAIL)]
    cost = measured(trials)
    assert cost.rate == pytest.approx(3e9 / 15.0)
    assert cost.seconds_per_trial == pytest.approx(25.0 / 3)
    assert measured([_trial(1e9, 0.0)]) is None and measured([]) is None


def test_stored_rates_time_their_studies_the_nearest_budget_stands_in_and_other_families_are_guessed(tmp_path):
    config = tiny_config(f"sqlite:///{tmp_path / 'x.db'}", families=("transformer", "gatr"),
                         budgets=(1e9, 2e9, 8e9), trials=3)
    run = resolve(config)            # 2 slots (max_concurrent), 1 thread per trial
    rate = 1e8                       # FLOP/s per thread for the guess
    stored = {spec.name: [] for spec in run.studies}
    stored["transformer/1e+09"] = [_trial(1e9, 4.0)]      # 2.5e8 FLOP/s per slot
    stored["transformer/8e+09"] = [_trial(8e9, 8.0)]      # 1e9 FLOP/s per slot
    remaining = {spec.name: 2 for spec in run.studies}
    cost = estimate(run, remaining=remaining, rate=rate, stored=stored)
    # transformer: 1e9 and 2e9 (nearer 1e9 in log) at 2.5e8, 8e9 at 1e9; gatr: everything at the guess
    transformer = 2 * (1e9 + 2e9) / 2.5e8 + 2 * 8e9 / 1e9
    gatr = 2 * (1e9 + 2e9 + 8e9) / (rate * UTILISATION)
    assert cost.seconds == pytest.approx((transformer + gatr) / 2)
    assert cost.measured == 6 and cost.trials == 12
    assert "6 at the rate their family's stored trials reached, 6 at 30%" in cost.line()
    guessed = estimate(run, remaining=remaining, rate=rate)
    assert guessed.measured == 0 and guessed.seconds == pytest.approx(2 * 22e9 / (rate * UTILISATION) / 2)
    assert "12 at 30%" in guessed.line()


def test_a_study_equally_near_two_measured_budgets_takes_the_smaller_ones_slower_rate(tmp_path):
    config = tiny_config(f"sqlite:///{tmp_path / 'x.db'}", families=("transformer",), budgets=(1e9, 2e9, 4e9))
    run = resolve(config)
    stored = {"transformer/1e+09": [_trial(1e9, 10.0)], "transformer/2e+09": [], "transformer/4e+09": [_trial(4e9, 4.0)]}
    cost = estimate(run, remaining={"transformer/1e+09": 0, "transformer/2e+09": 1, "transformer/4e+09": 0},
                    rate=1e8, stored=stored)
    assert cost.per_trial["transformer/2e+09"] == pytest.approx(2e9 / 1e8)    # 1e9's rate, 1e8 FLOP/s per slot
