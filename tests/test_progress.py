"""Progress of a run: lines (as `equiscale run` prints them) and, for `run_study` from a notebook, a bar."""

import io
from types import SimpleNamespace

import pytest

import study.pipeline
from study.pipeline import run_study
from study.progress import Progress


def test_the_bar_counts_finished_trials_and_the_lines_still_print():
    stream = io.StringIO()
    progress = Progress(stream=stream, bar=True)
    progress.add_study("gatr/1e+10", complete=1, target=4)
    progress.trial_finished("gatr/1e+10", value=0.05)
    progress.trial_finished("gatr/1e+10", value=None, detail="diverged at step 3")
    progress.close()
    text = stream.getvalue()
    assert "gatr/1e+10             2/4  val 0.05" in text and "FAILED (diverged at step 3)" in text
    assert "2/4 [" in text   # tqdm's bar: 2 of the 4 trials done (one finished before this run)


def test_lines_alone_without_the_bar_and_nothing_when_disabled():
    lines, quiet = io.StringIO(), io.StringIO()
    for stream, enabled in ((lines, True), (quiet, False)):
        progress = Progress(stream=stream, enabled=enabled)
        progress.add_study("s", complete=0, target=1)
        progress.trial_finished("s", value=0.1)
    assert lines.getvalue().count("\n") == 1 and "[" not in lines.getvalue().split("|")[1]
    assert quiet.getvalue() == ""


def test_run_study_shows_a_bar_unless_told_not_to(monkeypatch):
    made = []

    class Stop(Exception):
        pass

    class Task:
        def describe(self, settings):
            return "data"

        def load(self, settings, **kwargs):
            raise Stop

    def recording(**kwargs):
        made.append(kwargs)
        return Progress(enabled=False)

    run = SimpleNamespace(names=[], task=Task(), task_settings=None)
    monkeypatch.setattr(study.pipeline, "preflight", lambda config, storage=None: run)
    monkeypatch.setattr(study.pipeline, "Progress", recording)
    with pytest.raises(Stop):
        run_study(object())
    assert made == [{"enabled": True, "bar": True}]
    with pytest.raises(Stop):
        run_study(object(), progress=Progress(enabled=False))   # told not to: no other progress is made
    assert len(made) == 1


def test_the_eta_sums_each_studys_own_cost_else_its_expected_one_corrected_by_its_family():
    progress = Progress(enabled=False, slots=2, expected={"a/1": 10.0, "a/2": 100.0, "b/1": 50.0})
    progress.add_study("a/1", complete=0, target=4)
    progress.add_study("a/2", complete=0, target=3)
    progress.add_study("b/1", complete=0, target=2)
    assert progress.eta_seconds() is None                       # before any trial ends here
    progress.trial_finished("a/1", value=0.1, seconds=30.0)     # family a runs 3x slower than expected
    # a/1: 3 left x its own 30 s; a/2: 3 left x 100 s x 3; b/1: 2 left x 50 s (no ratio of its own); over 2 slots
    assert progress.eta_seconds() == pytest.approx((3 * 30 + 3 * 300 + 2 * 50) / 2)
    progress.trial_finished("a/1", value=None, detail="diverged")   # a failed trial changes no cost
    progress.trial_finished("a/1", value=0.1, seconds=10.0)
    assert progress.eta_seconds() == pytest.approx((2 * 20 + 3 * 200 + 2 * 50) / 2)


def test_without_expected_costs_the_eta_is_the_mean_wall_time_per_trial(monkeypatch):
    monkeypatch.setattr("study.progress.time.monotonic", lambda: 40.0)
    progress = Progress(enabled=False, started=0.0)
    progress.add_study("a/1", complete=0, target=5)
    progress.trial_finished("a/1", value=0.1, seconds=7.0)
    assert progress.eta_seconds() == pytest.approx(40.0 * 4)   # 40 s for the first trial, 4 left


def test_an_adaptive_studys_cap_makes_the_eta_an_upper_bound_until_it_decides_it_is_done():
    """A study counted to its adaptive sampler's cap prints "ETA ≤"; once the sampler decides it is done its
    target becomes what it has, its cap leaves the ETA, and a trial still running then raises the target."""
    lines = io.StringIO()
    progress = Progress(stream=lines, slots=1, expected={"a/1": 10.0, "g/1": 10.0})
    progress.add_study("a/1", complete=0, target=24, capped=True)
    progress.add_study("g/1", complete=0, target=2)
    progress.trial_finished("a/1", value=0.1, seconds=10.0)
    assert progress.eta_seconds() == pytest.approx(23 * 10.0 + 2 * 10.0)
    assert "ETA ≤ " in lines.getvalue().splitlines()[-1]
    progress.study_done("a/1")
    assert progress.eta_seconds() == pytest.approx(2 * 10.0)
    progress.trial_finished("g/1", value=0.2, seconds=10.0)
    last = lines.getvalue().splitlines()[-1]
    assert "ETA 0m10s" in last and "≤" not in last and "| all 2/3" in last      # a/1 is 1/1, g/1 1/2
    progress.trial_finished("a/1", value=0.1, seconds=10.0)                    # it was running when a/1 decided
    assert "a/1" in lines.getvalue().splitlines()[-1] and " 2/2 " in lines.getvalue().splitlines()[-1]
