"""benchmarks/head_probe.py: a probe run is the committed study's run of the same shape and budget (steps, FLOPs),
with the head count it asks for."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest

from study.benchmark.format import MARKERS, PROPS
from study.models.registry import RIGID_BODY_SAMPLE
from tests.scripts import load_benchmark

COMPUTE = f"sqlite:///{Path(__file__).resolve().parents[1] / 'docs' / 'results' / 'cpu-confirm2' / 'compute.db'}"


def test_a_probe_run_has_the_studys_steps_and_the_asked_head_count():
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    stored = next(t for t in optuna.load_study(study_name="transformer/1e+13", storage=COMPUTE).get_trials()
                  if t.user_attrs["shape"] == {"width": 66, "depth": 2})
    probe = load_benchmark("head_probe")
    for heads in (1, 2, 3):
        plan = probe.plan_for("transformer", {"width": 66, "depth": 2}, budget=1e13, batch=256, lr=0.0155, seed=300,
                              heads=heads)
        assert plan.steps == stored.user_attrs["steps"] == 15098
        assert plan.steps * plan.step_flops == stored.user_attrs["flops_used"]
        net = plan.model.build(RIGID_BODY_SAMPLE | {"markers": MARKERS, "props": PROPS}, {"width": 66, "depth": 2})
        assert [block.heads for block in net.blocks] == [heads, heads]


def test_a_shape_its_head_count_does_not_divide_is_refused_before_anything_trains(monkeypatch, capsys):
    monkeypatch.setattr("sys.argv", ["head_probe.py", "--family", "transformer", "--budget", "1e11", "--shapes",
                                     "width=16,depth=2", "width=21,depth=2", "--heads", "1", "2"])
    with pytest.raises(SystemExit) as stop:
        load_benchmark("head_probe").main()
    err = capsys.readouterr().err
    assert stop.value.code == 2 and "heads must be >= 1 and divide width 21, got 2" in err.splitlines()[-1]
