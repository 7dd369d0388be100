"""Stacked replicate groups inside studies (`[resources] stack`): through `equiscale run`, a group's members are
each their own Optuna trial with the values they would have alone; a diverged member fails alone; a driver
killed mid-group resumes without losing or duplicating a member."""

from __future__ import annotations

import dataclasses
import math
import os
import signal
import subprocess
import time

import optuna
import pytest

import study.tune as tune_module
from study.benchmark import load_dataset
from study.config import load_config, resolve
from study.progress import Progress
from study.resume import STALE_REASON
from study.training import train
from study.tune import plan_defaults, stack_group
from tests.test_tune_resume import _clean_up, _driver_command, _ray_left
from tests.tiny import tiny_toml

TrialState = optuna.trial.TrialState
NAME = "transformer/1e+09"

# One budget, adaptive: 3 coarse sizes (+ an extension), an lr sweep of two lrs at the best size (a group of 2),
# then 3 seeds at the best point (two more: a group of 2) and its neighbours. One slot: the trials' order, hence
# their numbers and seeds, is the same stacked or not.
ISOFLOP = "\n[isoflop]\nstart = 3\nmax_points = 4\nlr_extend = 0\nseeds = 3\ncap = 10\n"


def study_toml(stack: int) -> str:
    base = tiny_toml(budgets=(1e9,)).replace('families = ["transformer"]',
                                             'families = ["transformer"]\nsampler = "isoflop"\nseed = 3')
    return base.replace("max_concurrent = 2", f"max_concurrent = 1\nstack = {stack}") + ISOFLOP


def _trials(url: str) -> list[optuna.trial.FrozenTrial]:
    return optuna.load_study(study_name=NAME, storage=url).get_trials(deepcopy=False)


def _run(tmp_path, stack: int):
    (tmp_path / "study.toml").write_text(study_toml(stack))
    command, env, url, ray_tmp = _driver_command(tmp_path)
    (tmp_path / "study.toml").write_text(study_toml(stack))   # _driver_command writes the plain tiny study
    return command, env, url, ray_tmp


def _point(t) -> tuple:
    return round(t.params["fwd_flops"]), round(t.params["lr"], 12)


@pytest.mark.slow
def test_a_study_trains_the_same_trials_stacked_or_not(tmp_path):
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    stored = {}
    for stack in (1, 4):
        where = tmp_path / f"stack{stack}"
        where.mkdir()
        command, env, url, ray_tmp = _run(where, stack)
        done = subprocess.run(command, env=env, cwd=where, capture_output=True, timeout=300)
        assert done.returncode == 0, done.stderr.decode()
        stored[stack] = {t.number: t for t in _trials(url)}
    alone, stacked = stored[1], stored[4]
    groups = {tuple(t.user_attrs["stacked_with"]) for t in stacked.values() if "stacked_with" in t.user_attrs}
    assert len(groups) >= 2 and all(len(g) >= 2 for g in groups)       # the lr sweep and the seeds stacked
    assert not any("stacked_with" in t.user_attrs for t in alone.values())
    assert sorted(alone) == sorted(stacked)
    for number, single in alone.items():
        member = stacked[number]
        assert member.state == single.state == TrialState.COMPLETE
        assert _point(member) == _point(single)
        a, b = member.user_attrs, single.user_attrs
        assert (a["seed"], a["flops_used"], a["steps"], a["samples"]) == (b["seed"], b["flops_used"], b["steps"],
                                                                          b["samples"])
        assert member.value == pytest.approx(single.value, rel=1e-4)
        assert a["test_loss"] == pytest.approx(b["test_loss"], rel=1e-4)
        assert sorted(member.intermediate_values) == sorted(single.intermediate_values)
        for step, value in single.intermediate_values.items():
            assert member.intermediate_values[step] == pytest.approx(value, rel=1e-4)
        assert a["node"] and a["train_seconds"] > 0
    for group in groups:                       # members of a group differ in seed or lr (each its own trial)
        assert len({(stacked[n].user_attrs["seed"], _point(stacked[n])) for n in group}) == len(group)


@pytest.mark.slow
def test_a_driver_killed_mid_group_resumes_with_every_member_trained_once(tmp_path):
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    command, env, url, ray_tmp = _run(tmp_path, 4)
    driver = subprocess.Popen(command, env=env, cwd=tmp_path, start_new_session=True,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and driver.poll() is None:
            try:
                running = [t for t in _trials(url) if t.state == TrialState.RUNNING
                           and "stacked_with" in t.user_attrs]
            except Exception:   # the driver has not created the study yet
                running = []
            if running:
                break
            time.sleep(0.05)
        assert driver.poll() is None and running, "no stacked group seen running"
        os.kill(driver.pid, signal.SIGKILL)
        driver.wait()
        _ray_left(ray_tmp)
    finally:
        _clean_up(driver, ray_tmp)
    before = {t.number: t for t in _trials(url)}
    killed = {n for n in running[0].user_attrs["stacked_with"] if before[n].state == TrialState.RUNNING}
    assert killed and all(t.state != TrialState.RUNNING for n, t in before.items() if n not in killed)
    again = subprocess.run(command, env=env, cwd=tmp_path, capture_output=True, timeout=300)
    assert again.returncode == 0, again.stderr.decode()

    trials = _trials(url)
    failed = [t for t in trials if t.state == TrialState.FAIL]
    assert {t.number for t in failed} == killed                      # the killed group's members, stale
    assert all(t.user_attrs["fail_reason"] == STALE_REASON for t in failed)
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    assert len(complete) + len(failed) == len(trials)
    # each killed member's point trained again exactly as often as it was missing: no point has more COMPLETE
    # trials than the study asks for it (seeds at replicated points, one elsewhere)
    counts = {}
    for t in complete:
        counts[_point(t)] = counts.get(_point(t), 0) + 1
    for t in failed:
        assert counts.get(_point(t), 0) >= 1
    assert max(counts.values()) <= 3
    spec = next(s for s in resolve(load_config(tmp_path / "study.toml")).studies if s.name == NAME)
    decision = spec.sampler.decide(spec, trials)
    assert decision.done and not decision.propose                    # nothing lost: the study is finished
    assert len({t.user_attrs["seed"] for t in complete}) == len(complete)   # nothing trained twice


def test_a_group_is_the_first_proposal_and_others_of_its_size_up_to_the_limit():
    proposals = ((5, 1e-3), (5, 4e-3), (7, 2e-3), (5, 2e-3))
    assert stack_group(proposals, limit=4) == [(5, 1e-3), (5, 4e-3), (5, 2e-3)]
    assert stack_group(proposals, limit=2) == [(5, 1e-3), (5, 4e-3)]
    assert stack_group(proposals, limit=1) == [(5, 1e-3)]
    assert stack_group(((7, 2e-3), (5, 1e-3)), limit=4) == [(7, 2e-3)]


def test_a_diverged_member_fails_its_trial_alone(tmp_path, monkeypatch):
    """A group of two through the trainable and the searcher: one member at lr 1e30 diverges; its trial FAILs with
    the reason `train` gives it alone, the other is COMPLETE with the values it has trained alone."""
    from ray import tune

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    (tmp_path / "study.toml").write_text(tiny_toml(budgets=(1e9,), trials=2).replace("max_steps = 300",
                                                                                    "max_steps = 150"))
    spec = resolve(load_config(tmp_path / "study.toml")).studies[0]
    defaults = dataclasses.replace(plan_defaults(spec, resolve(load_config(tmp_path / "study.toml")).resources),
                                   checkpoint_seconds=math.inf)
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    progress = Progress(enabled=False)
    progress.add_study(spec.name, complete=0, target=2, best=None)
    optuna.create_study(study_name=spec.name, storage=url)
    search = tune_module._study_search_class()(
        name=spec.name, space=tune_module._space(spec), storage=optuna.storages.RDBStorage(url),
        sampler=spec.sampler.make(spec, seed=0), spec=spec, defaults=defaults, progress=progress)
    first = search.suggest("t0")["plan"]
    trial = search._ot_study.ask()                  # the second member, as the searcher asks it for a group
    bad = dataclasses.replace(first, lr=1e30, seed=first.seed + 1)
    search.plans["t0"] += (bad,)
    search.members["t0"] += (trial,)

    reports = []
    monkeypatch.setattr(tune, "report", lambda metrics, checkpoint=None: reports.append(dict(metrics)))
    monkeypatch.setattr(tune, "get_checkpoint", lambda: None)
    monkeypatch.setattr(tune_module, "node_name", lambda: "here")
    dataset = load_dataset(scenes=200, bodies=3, seed=0, cache_dir=tmp_path / "cache")
    tune_module.trainable({"plans": (first, bad)}, dataset=_Shared(dataset))
    for result in reports[:-1]:
        search.on_trial_result("t0", result)
    search.on_trial_complete("t0", result=reports[-1])

    good, failed = optuna.load_study(study_name=spec.name, storage=url).trials
    reference = train(first, dataset)                                # the good member trained alone
    assert good.state == TrialState.COMPLETE and good.value == pytest.approx(reference.val_loss, rel=2e-5)
    assert sorted(good.intermediate_values) == [s for s, _ in reference.curve]
    assert good.user_attrs["node"] == "here" and good.user_attrs["flops_used"] == first.flops
    with pytest.raises(Exception) as alone:
        train(bad, dataset)
    assert failed.state == TrialState.FAIL and failed.user_attrs["fail_reason"] == str(alone.value)
    assert failed.intermediate_values == {}


def test_a_retried_group_resumes_from_its_checkpoint_with_every_member_once(tmp_path, monkeypatch):
    """The Tune retry path without Ray: the group's worker dies right after its first checkpoint past step 10;
    the retried trainable resumes the group from it, and every member ends as the uninterrupted group does."""
    import shutil

    from ray import tune

    from study.stacked import train_group
    from tests.test_stacked import replicates

    plans = tuple(replicates("transformer", {"width": 8, "depth": 1}, steps=30, checkpoint_seconds=0.0))
    dataset = load_dataset(scenes=120, bodies=3, seed=0, cache_dir=tmp_path / "cache")
    reports, saved = [], tmp_path / "checkpoint"

    def dies(metrics, checkpoint=None):
        reports.append(dict(metrics))
        if checkpoint is not None and metrics["step"] >= 10 and not saved.exists():
            shutil.copytree(checkpoint.path, saved)      # what Tune keeps of it
            raise _Died

    monkeypatch.setattr(tune, "report", dies)
    monkeypatch.setattr(tune, "get_checkpoint", lambda: None)
    monkeypatch.setattr(tune_module, "node_name", lambda: "here")
    with pytest.raises(_Died):
        tune_module.trainable({"plans": plans}, dataset=_Shared(dataset))
    assert "error" in reports[-1]                                    # the trainable says why its worker died
    saved_at = [r for r in reports if "checkpoint_step" in r][-1]     # the group's checkpoint metrics
    step = saved_at["step"]
    assert saved_at["checkpoint_step"] == step and saved_at["result"] is None and math.isfinite(saved_at["val_loss"])
    first = [(r["member"], r["step"]) for r in reports if "member" in r]
    reports.clear()
    monkeypatch.setattr(tune, "get_checkpoint", lambda: tune.Checkpoint.from_directory(str(saved)))
    tune_module.trainable({"plans": plans}, dataset=_Shared(dataset))
    second = [(r["member"], r["step"]) for r in reports if "member" in r]
    whole = []
    uninterrupted = train_group(plans, dataset, report=lambda i, s, v: whole.append((i, s)))
    assert sorted(first + second) == sorted(whole)                       # every validation once
    assert all(s <= step for _, s in first) and all(s > step for _, s in second)
    for mine, theirs in zip(reports[-1]["results"], uninterrupted):
        assert mine.resumed_from == step and mine.node == "here"
        assert mine.val_loss == pytest.approx(theirs.val_loss, rel=1e-12)
        assert [s for s, _ in mine.curve] == [s for s, _ in theirs.curve]
        assert [v for _, v in mine.curve] == pytest.approx([v for _, v in theirs.curve], rel=1e-12)


class _Died(Exception):
    """The worker dies right after a checkpoint."""


@dataclasses.dataclass
class _Shared:
    """The dataset as the trainable receives it (`tensors()` of the object store's arrays)."""

    data: object

    def tensors(self):
        return self.data



@pytest.mark.parametrize("value", ["0", "-1", "2.5", "true"])
def test_a_stack_limit_that_is_no_positive_integer_is_refused(tmp_path, value):
    from study.errors import ConfigError

    (tmp_path / "study.toml").write_text(study_toml(2).replace("stack = 2", f"stack = {value}"))
    with pytest.raises(ConfigError, match="stack"):
        load_config(tmp_path / "study.toml")
