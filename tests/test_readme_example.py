"""The README's Python example runs as written (storage redirected to a temporary directory)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
pytestmark = pytest.mark.slow


def test_the_notebook_example_runs_a_study_and_fits_it(tmp_path, monkeypatch, capsys):
    (block,) = [b for b in re.findall(r"```python\n(.*?)```", README.read_text(), re.S) if "run_study" in b]
    monkeypatch.chdir(tmp_path)                                    # sqlite:///notebook.db lands here
    monkeypatch.setenv("EQUISCALE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("RAY_TMPDIR", "/tmp")
    namespace: dict = {}
    exec(compile(block, "README.md", "exec"), namespace)
    summary, fit = namespace["summary"], namespace["fit"]
    assert summary.short == () and len(summary.rows) == 6 and all(r.complete == 2 for r in summary.rows)
    assert (tmp_path / "notebook.db").is_file()
    assert set(fit.laws) == {"transformer", "gatr"}
    assert "gatr/4e+10" in capsys.readouterr().out                 # the printed status table
