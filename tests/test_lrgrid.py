"""Sampler "lrgrid" (search_spaces.lrgrid): a data study's learning rate from a log grid, extended past an edge
best within a limit, the best replicated; every decision from the stored trials, so it resumes after a kill.

The landscapes are synthetic: loss(lr) = (log10 lr - log10 lr*)² plus a small per-trial offset, and the
expected learning rates are computed independently with numpy's geomspace."""

from __future__ import annotations

import math
import random

import numpy as np
import optuna
import pytest

from search_spaces.lrgrid import LrGridSettings, decide, still_wanted
from search_spaces.refine import Observation
from study.config import load_config
from study.errors import ConfigError
from study.samplers import SETTLED_FAILURES, lr_grid
from study.training import DivergenceError, TimeCapError

RANGE = (1e-3, 1.6e-2)                          # 5 points: ratio 2
GRID = np.geomspace(*RANGE, 5)                  # 1e-3, 2e-3, 4e-3, 8e-3, 1.6e-2


def landscape(best_lr: float, *, diverge_above: float = math.inf):
    """loss(lr, trial number): a parabola in log10 lr around `best_lr`, +inf above `diverge_above`."""
    def loss(lr: float, number: int) -> float:
        if lr > diverge_above:
            return math.inf
        return (math.log10(lr) - math.log10(best_lr)) ** 2 + 1e-6 * (number % 3)
    return loss


def drive(settings, loss, *, parallel=1, kill_every=0, rng_seed=0) -> tuple[list[Observation], list[str]]:
    """Run one study to the end as the searcher does: up to `parallel` trials in flight, the oldest finishing
    first; with `kill_every` > 0, every so many decisions the driver dies (running trials vanish: stale FAILs are
    not observations) and a new one resumes from the finished trials alone."""
    rng, finished, running, notes, number, decisions = random.Random(rng_seed), [], [], [], 0, 0
    while True:
        decisions += 1
        if kill_every and decisions % kill_every == 0 and running:
            running = []                                                   # the driver died
        d = decide(settings, finished + [Observation(0, lr, None) for lr in running], lr_range=RANGE)
        assert not (d.done and running)
        if d.done:
            return finished, list(d.notes)
        if d.propose and len(running) < parallel:
            running.append(d.propose[0][1])                                # the searcher takes the first
            continue
        assert running, f"a decision that waits with nothing running: {d}"
        lr = running.pop(rng.randrange(len(running)) if parallel > 1 else 0)
        finished.append(Observation(0, lr, loss(lr, number)))
        number += 1
        assert decisions < 1000


def counts(trials) -> dict[float, int]:
    out: dict[float, int] = {}
    for t in trials:
        key = float(f"{t.lr:.6g}")
        out[key] = out.get(key, 0) + 1
    return out


def expected(*lrs_and_counts) -> dict[float, int]:
    return {float(f"{lr:.6g}"): n for lr, n in lrs_and_counts}


def test_a_best_inside_the_grid_trains_the_grid_once_and_the_best_with_two_seeds():
    trials, notes = drive(LrGridSettings(points=5, extend=2, seeds=2), landscape(3.5e-3))
    assert counts(trials) == expected(*((lr, 1) for lr in GRID[[0, 1, 3, 4]]), (GRID[2], 2))
    assert notes == []


@pytest.mark.parametrize("best_lr, beyond", [(1.6e-2 * 2.1, [3.2e-2, 6.4e-2]), (1e-3 / 2.1, [5e-4, 2.5e-4])])
def test_a_best_at_an_edge_extends_the_grid_until_it_lies_inside(best_lr, beyond):
    """The optimum about one grid step beyond an edge: two extensions put it strictly inside what was trained."""
    trials, notes = drive(LrGridSettings(points=5, extend=3, seeds=2), landscape(best_lr))
    c = counts(trials)
    assert set(c) == set(expected(*((lr, 1) for lr in [*GRID, *beyond])))
    best = min(trials, key=lambda t: t.value).lr
    assert c[float(f"{best:.6g}")] == 2 and sum(c.values()) == 5 + 2 + 1
    assert min(t.lr for t in trials) < best < max(t.lr for t in trials) and notes == []


def test_the_extension_limit_stops_it_with_a_note_and_the_edge_best_is_still_replicated():
    trials, notes = drive(LrGridSettings(points=5, extend=2, seeds=2), landscape(1.0))
    assert counts(trials) == expected(*((lr, 1) for lr in GRID), (3.2e-2, 1), (6.4e-2, 2))
    assert len(notes) == 1 and "high edge" in notes[0] and "after 2 extension(s)" in notes[0]


def test_a_diverged_learning_rate_beyond_the_edge_brackets_the_best():
    trials, notes = drive(LrGridSettings(points=5, extend=2, seeds=2), landscape(1.0, diverge_above=2e-2))
    assert counts(trials) == expected(*((lr, 1) for lr in GRID[:4]), (GRID[4], 2), (3.2e-2, 1))
    assert notes == []


def test_every_point_diverging_ends_the_study_after_the_low_extensions_with_a_note():
    trials, notes = drive(LrGridSettings(points=5, extend=2, seeds=2), landscape(1.0, diverge_above=0.0))
    assert counts(trials) == expected(*((lr, 1) for lr in [*GRID, 5e-4, 2.5e-4]))
    assert "no learning rate trained to a finite loss" in notes[-1]


@pytest.mark.parametrize("kill_every, rng_seed", [(3, 0), (4, 1), (7, 2)])
def test_two_in_parallel_and_killed_drivers_end_with_exactly_the_points_of_an_undisturbed_run(kill_every, rng_seed):
    settings = LrGridSettings(points=5, extend=2, seeds=2)
    alone, _ = drive(settings, landscape(1.6e-2 * 2.1))
    disturbed, _ = drive(settings, landscape(1.6e-2 * 2.1), parallel=2, kill_every=kill_every, rng_seed=rng_seed)
    assert counts(disturbed) == counts(alone)                 # no point trained twice, none missing


def test_a_point_in_flight_is_never_proposed_again():
    settings = LrGridSettings(points=5, extend=2, seeds=2)
    running = [Observation(0, lr, None) for lr in GRID[:3]]
    d = decide(settings, running, lr_range=RANGE)
    assert [lr for _, lr in d.propose] == pytest.approx(GRID[3:])
    d = decide(settings, running + [Observation(0, lr, None) for lr in GRID[3:]], lr_range=RANGE)
    assert d.wait and not d.propose


def test_what_a_study_still_needs_counts_down_to_zero():
    settings = LrGridSettings(points=5, extend=2, seeds=2)
    assert still_wanted(settings, [], lr_range=RANGE) == settings.most_trials() == 8
    loss = landscape(3.5e-3)
    trials, _ = drive(settings, loss)
    assert still_wanted(settings, trials, lr_range=RANGE) == 0
    assert still_wanted(settings, trials[:3], lr_range=RANGE) == 5


def test_the_settled_failures_are_the_messages_training_raises():
    assert str(DivergenceError(3, float("nan"))).startswith(SETTLED_FAILURES)
    assert str(TimeCapError(3, 10, 5.0, 4.0)).startswith(SETTLED_FAILURES)
    assert not "worker error (retries exhausted)".startswith(SETTLED_FAILURES)


def test_the_sampler_reads_the_stored_trials(tmp_path):
    """COMPLETE: its loss; RUNNING: in flight; diverged or capped FAIL: infinite loss; any other FAIL: retrained."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(storage=f"sqlite:///{tmp_path / 's.db'}", study_name="data/x/256/100")
    dist = optuna.distributions.FloatDistribution(*RANGE, log=True)
    for lr, state, reason, value in [(GRID[0], "COMPLETE", None, 0.5), (GRID[1], "FAIL", "diverged at step 3", None),
                                     (GRID[2], "FAIL", "time cap of 9 s passed", None),
                                     (GRID[3], "FAIL", "worker error (retries exhausted)", None),
                                     (GRID[4], "RUNNING", None, None)]:
        trial = optuna.trial.create_trial(params={"lr": float(lr)}, distributions={"lr": dist},
                                          state=getattr(optuna.trial.TrialState, state), value=value,
                                          user_attrs={"fail_reason": reason} if reason else {})
        study.add_trial(trial)

    class Spec:
        name, shape, lr_range, sampler_settings = "data/x/256/100", {"width": 8}, RANGE, None

    seen = lr_grid.observations(Spec, study.get_trials(deepcopy=False))
    assert [(round(o.lr, 6), o.value) for o in seen] == [(1e-3, 0.5), (2e-3, math.inf), (4e-3, math.inf),
                                                         (1.6e-2, None)]
    assert [lr for _, lr in lr_grid.decide(Spec, study.get_trials()).propose] == pytest.approx([GRID[3]])


@pytest.mark.parametrize("table, match", [("[lrgrid]\npoints = 4\n", "points >= 5"),
                                          ("[lrgrid]\nseeds = 0\n", "seeds >= 1"),
                                          ("[lrgrid]\nstart = 3\n", "unknown key")])
def test_bad_lrgrid_settings_are_one_config_error(tmp_path, table, match):
    path = tmp_path / "bad.toml"
    path.write_text('kind = "data"\nfamilies = ["transformer"]\nsampler = "lrgrid"\n[data]\nscenes = 300\nbodies = 3\n'
                    '[data_study]\ntrain_sizes = [64]\nlengths = [10, 100]\nshapes = { transformer = { width = 16, '
                    'depth = 1 } }\n' + table)
    with pytest.raises(ConfigError, match=match):
        load_config(path)


def test_lrgrid_refuses_a_compute_study(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text('families = ["transformer"]\nbudgets = [1e10]\nsampler = "lrgrid"\n')
    with pytest.raises(ConfigError, match="fixed shape"):
        load_config(path)


def test_no_replicate_is_proposed_while_a_running_seed_may_move_the_best_back():
    """Seeds 3: the best's second seed moved the best to a neighbour, its third still runs: wait for it."""
    settings = LrGridSettings(points=5, extend=2, seeds=3)
    grid = [Observation(0, lr, v) for lr, v in zip(GRID, (2.0, 1.5, 1.0, 1.05, 1.9))]
    trials = grid + [Observation(0, GRID[2], 1.2), Observation(0, GRID[2], None)]
    d = decide(settings, trials, lr_range=RANGE)
    assert d.wait and not d.propose
    d = decide(settings, trials[:-1] + [Observation(0, GRID[2], 1.4)], lr_range=RANGE)   # mean 1.2: k=3 is best
    assert [lr for _, lr in d.propose] == pytest.approx([GRID[3], GRID[3]])


def test_the_space_asks_for_lrs_within_the_range_widened_by_the_extensions():
    class Spec:
        lr_range, sampler_settings = RANGE, LrGridSettings(points=5, extend=2, seeds=2)

    lo, hi = lr_grid.lr_bounds(Spec)
    assert lo == pytest.approx(RANGE[0] / 4) and hi == pytest.approx(RANGE[1] * 4)
    assert lo <= 2.5e-4 and 6.4e-2 <= hi                  # the two extensions each way lie inside
