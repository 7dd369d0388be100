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
