"""Benchmark scripts report the user's mistakes as `equiscale` does: one line on stderr, exit status 2."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from study.cli import run_script
from study.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = sorted(p.name for p in (ROOT / "benchmarks").glob("*.py"))


def test_run_script_turns_a_user_error_into_one_line_and_status_2_and_leaves_bugs_alone(capsys):
    def missing():
        raise ConfigError("cannot read config 'nope.toml':\nNo such file")

    assert run_script(missing, prog="probe.py") == 2
    assert capsys.readouterr().err == "probe.py: error: cannot read config 'nope.toml':\\nNo such file\n"
    assert run_script(lambda: None, prog="probe.py") == 0
    assert run_script(lambda: 3, prog="probe.py") == 3

    def bug():
        raise RuntimeError("a bug keeps its traceback")

    with pytest.raises(RuntimeError):
        run_script(bug, prog="probe.py")


@pytest.mark.parametrize("name", SCRIPTS)
def test_every_benchmark_script_exits_through_run_script(name):
    text = (ROOT / "benchmarks" / name).read_text()
    assert text.rstrip().endswith('if __name__ == "__main__":\n    raise SystemExit(run_script(main))'), name


def test_a_missing_study_file_is_one_line_and_status_2_without_a_traceback():
    done = subprocess.run([sys.executable, "benchmarks/gatr_plateau.py", "--config", "no-such-study.toml"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert done.stderr == "gatr_plateau.py: error: cannot read config 'no-such-study.toml': No such file or directory\n"
