"""benchmarks/head_steps.py: the loss step across a head-count boundary, on a synthetic profile and on the committed
study (checked against the raw trials read here with Optuna and the head rule written out by hand)."""

from __future__ import annotations

import math
import re
import statistics
from pathlib import Path

import optuna
import pandas as pd
import pytest

from tests.scripts import load_benchmark

ROOT = Path(__file__).resolve().parents[1]
COMPUTE = f"sqlite:///{ROOT / 'docs' / 'results' / 'cpu-confirm2' / 'compute.db'}"


def test_the_step_compares_the_best_point_on_each_side_near_the_boundary():
    group = pd.DataFrame({"params": [1e3, 5e3, 9e3, 1.1e4, 1.8e4, 1e5],
                          "loss": [0.020, 0.050, 0.040, 0.036, 0.030, 0.010],
                          "heads": [1, 1, 1, 2, 2, 2]})
    ratio = load_benchmark("head_steps").step_ratio(group, 1, 2, 0.3)
    # boundary at sqrt(9e3 * 1.1e4) ≈ 9.95e3: within 0.3 decades are 5e3 and 9e3 below, 1.1e4 and 1.8e4 above;
    # 1e3 (0.020) and 1e5 (0.010) are farther and must not count
    assert ratio == pytest.approx(0.030 / 0.040)
    assert math.isnan(load_benchmark("head_steps").step_ratio(group, 2, 3, 0.3))           # no 3-head point


def _profile_by_hand(study_name: str) -> dict[int, tuple[int, float]]:
    """width -> (heads, mean val loss over seeds) of the study's trials at its rule lr; heads = max(1, width // 32)."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    losses: dict[int, list[float]] = {}
    for t in optuna.load_study(study_name=study_name, storage=COMPUTE).get_trials(deepcopy=False):
        if t.state == optuna.trial.TrialState.COMPLETE and t.user_attrs["lr"] == t.user_attrs["rule_lr"]:
            losses.setdefault(t.user_attrs["shape"]["width"], []).append(t.value)
    return {w: (max(1, w // 32), statistics.fmean(v)) for w, v in losses.items()}


def test_on_the_committed_study_the_transformers_1e13_minimum_sits_at_the_first_two_head_width(monkeypatch, capsys):
    monkeypatch.setattr("sys.argv", ["head_steps.py", "--storage", COMPUTE])
    assert load_benchmark("head_steps").main() == 0
    out = capsys.readouterr().out
    for family in ("transformer", "transformer-aug"):
        points = _profile_by_hand(f"{family}/1e+13")
        widths = sorted(points)
        best = min(widths, key=lambda w: points[w][1])
        i = widths.index(best)
        at_change = points[widths[i - 1]][0] != points[best][0] or points[widths[i + 1]][0] != points[best][0]
        line = re.search(rf"^{re.escape(family)} 1e\+13: .*\n    best N (\S+) \((\d+) head\(s\)\)(, next to a "
                         rf"head-count change)?", out, flags=re.M)
        assert line and int(line.group(2)) == points[best][0] and bool(line.group(3)) == at_change
        one = min(loss for w, (h, loss) in points.items() if h == 1)
        two = min(loss for w, (h, loss) in points.items() if h == 2)
        assert two < one                 # the committed finding: the 2-head sizes beat every 1-head size there
