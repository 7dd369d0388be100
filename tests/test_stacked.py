"""Replicates trained together (`study.stacked.train_group`) against the same replicates trained one by one.

The reference is always `study.training.train` on each plan alone (same seeds, learning rates, weight decays):
the stacked group must give the same learning curves, final losses and equivariance errors to float tolerance;
a replicate that diverges alone must diverge in the group at the same step while the others are unaffected; a
group resumed from its checkpoint must end exactly like the uninterrupted group.
"""

from __future__ import annotations

import dataclasses
import math

import pytest
from torch import nn

import study.stacked
from study.benchmark import load_dataset
from study.records import TrainResult, TrialPlan
from study.stacked import GROUP_STATE_VERSION, train_group
from study.stacked_modules import Unstackable, check_stackable
from study.training import DivergenceError, TimeCapError, eval_steps, train
from tests.test_training import _Interrupted, _serialised

GATR = {"mv_channels": 2, "s_channels": 4, "depth": 1}
TRANSFORMER = {"width": 16, "depth": 1}
REL = 2e-5     # float32, different summation orders (batched products), a few dozen AdamW steps


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return load_dataset(scenes=120, bodies=3, seed=0, cache_dir=tmp_path_factory.mktemp("cache"))


def plan(family="transformer", shape=None, **changes) -> TrialPlan:
    fields = dict(family=family, budget=1e9, shape=shape or TRANSFORMER, lr=2e-3, steps=40, batch_size=8,
                  step_flops=0.0, forward_flops=0.0, params=0, seed=0, evals=3, val_samples=0, threads=1)
    return TrialPlan(**(fields | changes))


def replicates(family, shape, **changes) -> list[TrialPlan]:
    """Three replicates of one point: other seeds, learning rates, a weight decay and a warm-up."""
    base = plan(family, shape, **changes)
    return [dataclasses.replace(base, seed=11, lr=2e-3),
            dataclasses.replace(base, seed=12, lr=5e-3, weight_decay=0.1),
            dataclasses.replace(base, seed=13, lr=1e-3, warmup_fraction=0.2)]


def alone(plans, dataset):
    """Each plan trained by itself: (result or DivergenceError, reports)."""
    out = []
    for p in plans:
        reported = []
        try:
            out.append((train(p, dataset, report=lambda s, v: reported.append((s, v))), reported))
        except DivergenceError as error:
            out.append((error, reported))
    return out


def assert_same_run(group: TrainResult, single: TrainResult, *, rel=REL):
    assert isinstance(group, TrainResult)
    assert (group.steps, group.samples, group.epochs, group.params) == (
        single.steps, single.samples, single.epochs, single.params)
    assert [s for s, _ in group.curve] == [s for s, _ in single.curve]
    assert [v for _, v in group.curve] == pytest.approx([v for _, v in single.curve], rel=rel)
    for name in ("val_loss", "test_loss", "train_loss"):
        assert getattr(group, name) == pytest.approx(getattr(single, name), rel=rel), name
    assert group.equivariance_error == pytest.approx(single.equivariance_error, rel=1e-3, abs=1e-6)


@pytest.mark.parametrize("family, shape, method", [
    ("transformer-aug", TRANSFORMER, "fold"),    # augmentation drawn from each replicate's own generator
    ("transformer-aug-notrans", TRANSFORMER, "fold"),   # the family's augment options (no translation) as alone
    ("gatr", GATR, "fold"),                      # stacked EquiLinear in both layouts, the bilinear kernel on R·B
    ("transformer", TRANSFORMER, "vmap"),        # torch.func path
])
def test_stacked_replicates_train_like_each_replicate_alone(dataset, family, shape, method):
    plans = replicates(family, shape)
    singles = alone(plans, dataset)
    reported = []
    group = train_group(plans, dataset, method=method, report=lambda i, s, v: reported.append((i, s, v)))
    assert len(group) == len(plans)
    for i, (result, (single, single_reports)) in enumerate(zip(group, singles)):
        assert_same_run(result, single)
        mine = [(s, v) for j, s, v in reported if j == i]
        assert [s for s, _ in mine] == [s for s, _ in single_reports] == eval_steps(plans[i].steps, 3)
        assert [v for _, v in mine] == pytest.approx([v for _, v in single_reports], rel=REL)
    # the replicates really differ (otherwise equality with each run alone would say little)
    assert len({round(r.val_loss, 6) for r in group}) == len(plans)


def test_the_plain_op_adamw_fallback_trains_like_each_replicate_alone(dataset, monkeypatch):
    monkeypatch.setattr(study.stacked, "_FUSED_ADAMW", None)    # a device or build without the fused kernel
    plans = replicates("transformer", TRANSFORMER)
    for result, (single, _) in zip(train_group(plans, dataset, method="fold"), alone(plans, dataset)):
        assert_same_run(result, single)


def test_a_gatr_group_stays_equivariant(dataset):
    group = train_group(replicates("gatr", GATR, steps=10), dataset)
    assert all(r.equivariance_error < 1e-4 for r in group)


def test_the_loop_method_is_train_itself(dataset):
    plans = replicates("transformer", TRANSFORMER, steps=12)
    for result, (single, _) in zip(train_group(plans, dataset, method="loop"), alone(plans, dataset)):
        assert (result.val_loss, result.test_loss, result.curve) == (single.val_loss, single.test_loss, single.curve)


@pytest.mark.parametrize("family, shape", [("transformer", TRANSFORMER), ("gatr", GATR)])
def test_a_diverging_replicate_fails_alone_and_the_others_go_on(dataset, family, shape):
    # 150 steps: the bad replicate diverges at once but is found at the check after step 100 (CHECK_EVERY); the
    # group goes on without it, and the others match their runs alone to the end
    plans = replicates(family, shape, steps=150)
    plans[1] = dataclasses.replace(plans[1], lr=1e30)
    singles = alone(plans, dataset)
    assert isinstance(singles[1][0], DivergenceError)   # the independent verdict: it diverges by itself
    reported = []
    group = train_group(plans, dataset, report=lambda i, s, v: reported.append((i, s)))
    assert isinstance(group[1], DivergenceError)
    assert (group[1].step, math.isnan(group[1].loss)) == (singles[1][0].step, math.isnan(singles[1][0].loss))
    for i in (0, 2):
        assert_same_run(group[i], singles[i][0])
    assert [s for i, s in reported if i == 1] == [s for s, _ in singles[1][1]]   # nothing reported after failing


@pytest.mark.parametrize("method", ["fold", "loop"])
def test_a_replicate_past_its_time_cap_fails_alone_with_the_reason_train_gives(dataset, method):
    plans = replicates("transformer", TRANSFORMER, steps=30)
    plans[1] = dataclasses.replace(plans[1], time_cap_seconds=0.0)     # past the cap after its first step
    with pytest.raises(TimeCapError) as alone_error:
        train(plans[1], dataset)
    group = train_group(plans, dataset, method=method)
    assert isinstance(group[1], TimeCapError)
    assert (group[1].step, str(group[1]).split(" (")[0]) == (alone_error.value.step,
                                                              str(alone_error.value).split(" (")[0])
    for i in (0, 2):
        assert_same_run(group[i], train(plans[i], dataset))


def test_every_replicate_diverging_returns_every_failure(dataset):
    plans = [dataclasses.replace(p, lr=1e30) for p in replicates("transformer", TRANSFORMER, steps=20)]
    group = train_group(plans, dataset)
    assert all(isinstance(r, DivergenceError) for r in group)


def _run_until(plans, dataset, stop_at: int, method: str):
    saved, reported = {}, []

    def checkpoint(state):
        if state["step"] == stop_at:
            saved["state"] = _serialised(state)
            raise _Interrupted

    with pytest.raises(_Interrupted):
        train_group(plans, dataset, checkpoint=checkpoint, method=method,
                    report=lambda i, s, v: reported.append((i, s, v)))
    return saved["state"], reported


# transformer-aug across a block of DRAW_AHEAD=256 drawn minibatches (resumed inside it), one replicate failed
# before the checkpoint (at the check after step 100); gatr before its last validation
@pytest.mark.parametrize("family, shape, steps, stop_at, method", [
    ("transformer-aug", {"width": 8, "depth": 1}, 300, 140, "fold"),
    ("gatr", GATR, 60, 41, "fold"),
    ("transformer", {"width": 8, "depth": 1}, 30, 17, "loop"),
])
def test_a_group_resumed_from_its_checkpoint_ends_exactly_like_the_uninterrupted_group(
        dataset, family, shape, steps, stop_at, method):
    plans = replicates(family, shape, steps=steps, checkpoint_seconds=0.0)
    if steps > 100:
        plans[1] = dataclasses.replace(plans[1], lr=1e30)
    whole_reports = []
    whole = train_group(plans, dataset, method=method, report=lambda i, s, v: whole_reports.append((i, s, v)))
    state, before = _run_until(plans, dataset, stop_at, method)
    assert state["version"] == GROUP_STATE_VERSION and state["step"] == stop_at
    first = (lambda i: i == 0) if method == "loop" else (lambda i: True)   # the loop trains one after another
    assert before == [(i, s, v) for i, s, v in whole_reports if s <= stop_at and first(i)]
    after = []
    resumed = train_group(plans, dataset, resume=state, method=method,
                          report=lambda i, s, v: after.append((i, s, v)))
    assert sorted(before + after) == sorted(whole_reports)          # every validation reported exactly once
    for mine, theirs in zip(resumed, whole):
        if isinstance(theirs, DivergenceError):
            assert isinstance(mine, DivergenceError) and mine.step == theirs.step
            continue
        for name in ("val_loss", "test_loss", "train_loss", "equivariance_error"):
            assert getattr(mine, name) == pytest.approx(getattr(theirs, name), rel=1e-12, abs=0), name
        assert (mine.steps, mine.samples, mine.epochs) == (theirs.steps, theirs.samples, theirs.epochs)
        assert [s for s, _ in mine.curve] == [s for s, _ in theirs.curve]
        assert [v for _, v in mine.curve] == pytest.approx([v for _, v in theirs.curve], rel=1e-12, abs=0)
    if method != "loop":
        assert {r.resumed_from for r in resumed if isinstance(r, TrainResult)} == {stop_at}


def test_a_replicate_of_a_group_checkpoint_resumes_alone_with_train(dataset):
    # each entry of a group state is the state `train` saves: a group can be split on retry without losing a replicate
    plans = replicates("gatr", GATR, steps=30, checkpoint_seconds=0.0)
    whole = train_group(plans, dataset)
    state, _ = _run_until(plans, dataset, 13, "fold")
    for p, entry, theirs in zip(plans, state["replicas"], whole):
        assert_same_run(train(p, dataset, resume=entry), theirs)


def test_a_group_state_of_other_plans_is_refused(dataset):
    plans = replicates("transformer", {"width": 8, "depth": 1}, steps=12, checkpoint_seconds=0.0)
    state, _ = _run_until(plans, dataset, 5, "fold")
    with pytest.raises(ValueError, match="another plan"):
        train_group([plans[0], dataclasses.replace(plans[1], lr=9e-3), plans[2]], dataset, resume=state)
    with pytest.raises(ValueError, match="2 plans"):
        train_group(plans[:2], dataset, resume=state)


def test_plans_that_do_not_share_the_network_or_the_loop_are_refused(dataset):
    p = plan()
    for change in (dict(shape={"width": 32, "depth": 1}), dict(steps=41), dict(batch_size=16), dict(family="gatr")):
        with pytest.raises(ValueError, match="must share"):
            train_group([p, dataclasses.replace(p, **change)], dataset)


def test_a_network_with_batch_statistics_or_an_unknown_parameterised_module_is_not_stacked():
    with pytest.raises(Unstackable, match="buffer"):
        check_stackable(nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4)))
    with pytest.raises(Unstackable, match="Conv1d"):
        check_stackable(nn.Sequential(nn.Linear(3, 4), nn.Conv1d(4, 4, 1)))
    check_stackable(nn.Sequential(nn.Linear(3, 4), nn.GELU(), nn.LayerNorm(4)))
