"""benchmarks/study_utilisation.py --compare: the two arms' study files differ from the given one only in
`[resources] stack` (and the `[isoflop]` cap when asked); bad input is one line and exit status 2."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from tests.scripts import load_benchmark

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "study_utilisation.py"


def _module():
    return load_benchmark("study_utilisation")


@pytest.mark.parametrize("name", ["cpu.toml"])
def test_an_arm_changes_only_the_stack_and_the_cap(name):
    text = (ROOT / "studies" / name).read_text()
    original = tomllib.loads(text)
    for stack, cap in ((1, None), (4, 6)):
        arm = tomllib.loads(_module().variant(text, stack=stack, cap=cap))
        expected = {**original, "resources": {**original["resources"], "stack": stack}}
        if "isoflop" in original and cap is not None:
            expected["isoflop"] = {**original["isoflop"], "cap": cap}
        assert arm == expected


def test_a_file_without_a_resources_table_gets_one():
    assert tomllib.loads(_module().variant('families = ["gatr"]\n', stack=3, cap=None)) == {
        "families": ["gatr"], "resources": {"stack": 3}}


def test_the_default_budgets_are_the_files_within_1e11_and_1e12():
    assert _module().budgets_between(str(ROOT / "studies" / "cpu.toml"), 1e11, 1e12) == [1e11, 3e11, 1e12]


@pytest.mark.parametrize("args, says", [
    (["--compare", "no-such.toml"], "no study file"),
    (["--compare", "studies/cpu.toml", "--stack", "1"], "--stack"),
])
def test_bad_input_is_one_line_and_status_2(args, says):
    done = subprocess.run([sys.executable, str(SCRIPT), *args], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and says in done.stderr.strip().splitlines()[-1]


def test_step_costs_recover_each_familys_fixed_cost_per_step_and_its_marginal_rate(tmp_path):
    from tests.analysis.synthetic import Truth, make_storage

    costs = {"a": (4e-3, 40e9), "b": (20e-3, 25e9)}       # seconds per step fixed, FLOP/s marginal

    def attrs(family, n, d, flops):
        steps = int(round(d / 64))
        fixed, rate = costs[family]
        return {"train_seconds": steps * fixed + flops / rate}

    url = f"sqlite:///{tmp_path / 's.db'}"
    make_storage(url, {"a": Truth(), "b": Truth()}, [1e15, 1e16], extras=False, trial_attrs=attrs)
    got = _module().step_costs(url)
    for family, (fixed, rate) in costs.items():
        assert got[family][0] == pytest.approx(fixed, rel=1e-6) and got[family][1] == pytest.approx(rate, rel=1e-6)


def test_a_stacked_groups_span_occupies_one_slot_once():
    import datetime

    import optuna

    t0 = datetime.datetime(2026, 1, 1)

    def trial(number, start, end, stacked_with=()):
        attrs = {"stacked_with": list(stacked_with)} if stacked_with else {}
        t = optuna.trial.create_trial(value=0.1, user_attrs=attrs)
        t.number = number
        t.datetime_start, t.datetime_complete = t0 + datetime.timedelta(seconds=start), t0 + datetime.timedelta(seconds=end)
        return t

    named = [("s/1", trial(0, 0, 10, [1, 2])), ("s/1", trial(1, 0, 12, [0, 2])), ("s/1", trial(2, 1, 12, [0, 1])),
             ("s/1", trial(3, 0, 5)), ("s/2", trial(0, 2, 9))]   # trial 0 of another study is another trial
    assert _module().occupied_seconds(named) == pytest.approx(12 + 5 + 7)
