"""Checkpoints and faults end to end through Ray Tune: a worker killed mid-trial resumes from its checkpoint.

One tiny study runs with the real trainable wrapped by a fault injector (a closure, so Ray ships it by
value; `study.tune.trainable` is patched in the driver only). The first three trials to start get a
role, kept per trial seed across retries:
- "resume" checkpoints after every step and its worker dies (`os._exit`) at the first checkpoint past
  mid-run; Tune retries it and it resumes from its last checkpoint, ending like an uninterrupted run
  of its plan, with the whole run's steps, samples and FLOPs stored once;
- "raise" raises on every attempt: after its retry it FAILs with the worker-error reason;
- "diverge" trains on NaN targets: it FAILs with the divergence reason, at once (no retry);
and the study goes on to its target of COMPLETE trials in a second round.
Then the trainable's checkpoint helpers alone: a saved state loads back, its report is no learning-curve
point for the searcher, and a checkpoint Tune cannot store turns checkpoints off rather than failing the trial.
"""

from __future__ import annotations

import dataclasses
import json
import math
import pickle

import optuna
import pytest

import study.tune
from study.benchmark import load_dataset
from study.config import study_name
from study.pipeline import run_study
from study.training import eval_steps, train
from study.checkpoint import CheckpointSaver, checkpoint_metrics, load_checkpoint
from study.tune import METRIC, trial_seed
from tests.tiny import tiny_config
from tests.test_tune_search import searchers  # noqa: F401  (a fixture)

pytestmark = pytest.mark.slow
ROLES = ("resume", "raise", "diverge")


def fault_injector(marks: str):
    """The trainable wrapped with the faults above; what happened is written under `marks`."""

    def faulty(config, dataset=None):
        import os
        import pickle
        import time
        from pathlib import Path

        import torch
        from ray import tune

        import study.tune

        plan, where = config["plan"], Path(marks)
        role = "normal"
        for slot in range(64):                       # the first three trials to start claim the roles
            path = where / f"slot-{slot}"
            try:
                fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                while not path.read_text():
                    time.sleep(0.01)
                if int(path.read_text()) != plan.seed:
                    continue
            else:
                os.write(fd, str(plan.seed).encode())
                os.close(fd)
            role = ROLE_NAMES[slot] if slot < len(ROLE_NAMES) else "normal"
            break
        if role == "raise":                          # torch raises inside training: a device it does not know
            return study.tune.trainable({"plan": dataclasses.replace(plan, device="injected-fault")}, dataset)
        if role == "diverge":
            dataset = dataset.tensors()              # the trainable receives the object store's arrays
            nan = torch.full_like(dataset.train.posT, float("nan"))
            dataset = dataclasses.replace(dataset, train=dataclasses.replace(dataset.train, posT=nan))
        if role != "resume":
            return study.tune.trainable(config, dataset)

        attempt = "retry" if tune.get_checkpoint() is not None else "first"
        (where / "plan.pkl").write_bytes(pickle.dumps(plan))
        log, real_report = [], tune.report

        def report(metrics, *, checkpoint=None):
            if checkpoint is not None and attempt == "first" and metrics["step"] >= plan.steps // 2:
                (where / "killed").write_text(json.dumps({"step": metrics["step"], "log": log}))
                time.sleep(2.0)                      # the earlier checkpoints reach the driver
                os._exit(1)                          # the worker dies mid-trial, after its checkpoints
            real_report(metrics, checkpoint=checkpoint)
            if metrics.get("result") is not None:
                r = metrics["result"]
                log.append({"final": [r.resumed_from, r.steps, r.samples]})
            elif checkpoint is None:
                log.append({"curve": metrics["step"]})
            (where / f"{attempt}.json").write_text(json.dumps(log))

        tune.report = report
        try:
            return study.tune.trainable({"plan": dataclasses.replace(plan, checkpoint_seconds=0.0)}, dataset)
        finally:
            tune.report = real_report

    ROLE_NAMES = ROLES
    return faulty


def test_killed_worker_resumes_from_its_checkpoint_and_faulty_trials_fail_while_the_study_goes_on(
        tmp_path, ray_tmpdir, monkeypatch):  # noqa: F811
    marks = tmp_path / "marks"
    marks.mkdir()
    monkeypatch.setattr(study.tune, "trainable", fault_injector(str(marks)))
    config = tiny_config(f"sqlite:///{tmp_path / 'study.db'}", families=("transformer",), budgets=(2e9,), trials=3)
    config = dataclasses.replace(config, training=dataclasses.replace(config.training, checkpoint_seconds=1000.0))
    summary = run_study(config, cache_dir=tmp_path / "cache")
    assert summary.short == () and [r.complete for r in summary.rows] == [3]   # the study went on to its target

    name = study_name("transformer", 2e9)
    trials = optuna.load_study(study_name=name, storage=config.storage).trials
    by_seed = {trial_seed(name, t.number, config.seed): t for t in trials}
    roles = {}
    for slot, role in enumerate(ROLES):
        roles[role] = by_seed[int((marks / f"slot-{slot}").read_text())]
    states = sorted(t.state.name for t in trials)
    assert states == ["COMPLETE"] * 3 + ["FAIL"] * 2                          # 3 trials in round 1, 2 in round 2
    reason = roles["raise"].user_attrs["fail_reason"]              # the worker's exception text reaches the storage
    assert reason.startswith("worker error (retries exhausted): RuntimeError:") and "injected-fault" in reason
    assert roles["diverge"].user_attrs["fail_reason"].startswith("diverged at step 1:")

    # the killed trial: resumed from a checkpoint after its death, the whole run counted once
    plan = pickle.loads((marks / "plan.pkl").read_bytes())
    assert plan.checkpoint_seconds == 1000.0                                   # the config reaches the plan
    killed = json.loads((marks / "killed").read_text())
    retry = json.loads((marks / "retry.json").read_text())
    (resumed_from, steps, samples) = retry[-1]["final"]
    assert 0 < resumed_from < killed["step"] <= plan.steps and steps == plan.steps and samples == plan.samples
    before = [e["curve"] for e in killed["log"] if "curve" in e]
    after = [e["curve"] for e in retry if "curve" in e]
    assert before == [s for s in eval_steps(plan.steps, plan.evals) if s <= resumed_from]   # no duplicated step
    assert after == [s for s in eval_steps(plan.steps, plan.evals) if s > resumed_from]

    trial = roles["resume"]
    a = trial.user_attrs
    assert trial.state.name == "COMPLETE" and a["steps"] == plan.steps and a["samples"] == plan.samples
    assert a["flops_used"] == pytest.approx(plan.step_flops * plan.steps, rel=1e-12)
    assert a["nominal_flops"] == pytest.approx(3 * plan.forward_flops * plan.samples, rel=1e-12)
    dataset = load_dataset(config.data.benchmark(), cache_dir=tmp_path / "cache")     # the study's own dataset
    whole = train(dataclasses.replace(plan, checkpoint_seconds=math.inf), dataset)   # never interrupted
    assert trial.value == pytest.approx(whole.val_loss, rel=1e-9)
    assert a["test_loss"] == pytest.approx(whole.test_loss, rel=1e-9)
    assert trial.intermediate_values == pytest.approx(dict(whole.curve), rel=1e-9)


def _state(step=7, curve=((5, 0.25),)):
    import torch

    return {"step": step, "curve": [list(p) for p in curve], "model": {"w": torch.arange(6.0).reshape(2, 3)},
            "generator": torch.Generator().manual_seed(3).get_state(), "draws": None}


def test_a_saved_checkpoint_loads_back_and_its_report_is_no_curve_point(tmp_path, monkeypatch, searchers):  # noqa: F811
    import torch
    from ray import tune

    reports = []

    def report(metrics, *, checkpoint=None):        # Tune copies the directory during report: so does this
        reports.append((metrics, checkpoint.to_directory(str(tmp_path / f"kept-{len(reports)}"))))

    monkeypatch.setattr(tune, "report", report)
    CheckpointSaver()(_state())
    ((metrics, kept),) = reports
    assert metrics == {METRIC: 0.25, "step": 7, "checkpoint_step": 7, "result": None}
    loaded = load_checkpoint(tune.Checkpoint.from_directory(kept))
    assert loaded["step"] == 7 and torch.equal(loaded["model"]["w"], torch.arange(6.0).reshape(2, 3))
    assert torch.equal(loaded["generator"], _state()["generator"]) and loaded["curve"] == [[5, 0.25]]
    assert load_checkpoint(None) is None
    assert math.isnan(checkpoint_metrics(_state(curve=()))[METRIC])   # before the first validation

    storage, made = searchers                      # the searcher records curve points, not checkpoint reports
    search = made["transformer/1e+10"]
    search.suggest("a")
    search.on_trial_result("a", {METRIC: 0.5, "step": 5})
    search.on_trial_result("a", checkpoint_metrics(_state()))
    (trial,) = optuna.load_study(study_name="transformer/1e+10", storage=storage).trials
    assert trial.intermediate_values == {5: 0.5}


def test_a_checkpoint_that_cannot_be_stored_turns_checkpoints_off_not_the_trial(monkeypatch, capfd):
    from ray import tune

    calls = []

    def unreachable(metrics, *, checkpoint=None):  # what Tune raises on a node that cannot reach its storage path
        calls.append(metrics["step"])
        raise RuntimeError("Unable to set up cluster storage with the following settings")

    monkeypatch.setattr(tune, "report", unreachable)
    saver = CheckpointSaver()
    saver(_state(step=3))
    saver(_state(step=4))
    assert calls == [3] and not saver.enabled
    assert "checkpoints disabled for this trial: Unable to set up cluster storage" in capfd.readouterr().err
