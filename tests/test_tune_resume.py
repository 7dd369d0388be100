"""Resume: SIGKILL the driver mid-study, run the same command again: exactly the target COMPLETE trials."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import optuna
import pytest

from study.resume import INTERRUPTED_REASON, STALE_REASON
from tests.tiny import tiny_toml

pytestmark = pytest.mark.slow
TrialState = optuna.trial.TrialState

CONFIG = tiny_toml(budgets=(1e9, 2e9), trials=4)


def _counts(url: str) -> dict[str, dict[TrialState, int]]:
    counts = {}
    try:
        summaries = optuna.get_all_study_summaries(url)
    except Exception:  # the driver has not created the tables yet
        return {}
    for summary in summaries:
        trials = optuna.load_study(study_name=summary.study_name, storage=url).get_trials(deepcopy=False)
        counts[summary.study_name] = {state: sum(t.state == state for t in trials) for state in TrialState}
    return counts


def _processes_with_env(marker: str) -> list[int]:
    """PIDs whose environment contains `marker` (the driver's private RAY_TMPDIR: its Ray processes)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                if marker.encode() in (entry / "environ").read_bytes():
                    pids.append(int(entry.name))
            except OSError:
                continue
    return pids


def _driver_command(tmp_path):
    """The tiny study's `equiscale run` command, its environment (private RAY_TMPDIR and cache) and storage."""
    ray_tmp = tempfile.mkdtemp(prefix="eqr", dir="/tmp")
    env = dict(os.environ, RAY_TMPDIR=ray_tmp, EQUISCALE_CACHE_DIR=str(tmp_path / "cache"))
    (tmp_path / "study.toml").write_text(CONFIG)
    url = f"sqlite:///{tmp_path / 'study.db'}"
    command = [sys.executable, "-m", "study.cli", "run", str(tmp_path / "study.toml"), "--storage", url, "--quiet"]
    return command, env, url, ray_tmp


def _start_until(command, env, cwd, url, *, complete: int):
    """Start the driver and return it once `complete` trials are COMPLETE and one is RUNNING."""
    driver = subprocess.Popen(command, env=env, cwd=cwd, start_new_session=True,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and driver.poll() is None:
        counts = _counts(url)
        if (sum(c[TrialState.COMPLETE] for c in counts.values()) >= complete
                and sum(c[TrialState.RUNNING] for c in counts.values()) >= 1):
            break
        time.sleep(0.2)
    assert driver.poll() is None, driver.stderr.read().decode()
    return driver


def _ray_left(ray_tmp: str, *, within: float = 10.0) -> list[int]:
    """The driver's Ray processes still alive `within` seconds from now (returns as soon as none are)."""
    since = time.monotonic()
    while _processes_with_env(f"RAY_TMPDIR={ray_tmp}") and time.monotonic() - since < within:
        time.sleep(0.2)
    return _processes_with_env(f"RAY_TMPDIR={ray_tmp}")


def _clean_up(driver, ray_tmp: str) -> None:
    if driver is not None and driver.poll() is None:
        os.killpg(driver.pid, signal.SIGKILL)
        driver.wait()
    for pid in _processes_with_env(f"RAY_TMPDIR={ray_tmp}"):  # Ray processes of that driver only
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def test_sigkilled_driver_resumes_to_exactly_the_target(tmp_path):
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    command, env, url, ray_tmp = _driver_command(tmp_path)
    driver = None
    try:
        driver = _start_until(command, env, tmp_path, url, complete=1)
        os.kill(driver.pid, signal.SIGKILL)                         # the driver alone: Ray is left behind
        driver.wait()
        left = _ray_left(ray_tmp)
    finally:
        _clean_up(driver, ray_tmp)
    assert left == [], "the SIGKILLed driver's Ray processes are still alive 10 s later"

    before = _counts(url)
    stale = sum(c[TrialState.RUNNING] for c in before.values())
    assert stale >= 1
    kept = {name: {t.number: t.value for t in optuna.load_study(study_name=name, storage=url).trials
                   if t.state == TrialState.COMPLETE} for name in before}

    again = subprocess.run(command, env=env, cwd=tmp_path, capture_output=True, timeout=300)
    assert again.returncode == 0, again.stderr.decode()

    for name in ("transformer/1e+09", "transformer/2e+09"):
        trials = optuna.load_study(study_name=name, storage=url).trials
        complete = [t for t in trials if t.state == TrialState.COMPLETE]
        failed = [t for t in trials if t.state == TrialState.FAIL]
        assert len(complete) == 4  # none lost, none duplicated
        assert not [t for t in trials if t.state not in (TrialState.COMPLETE, TrialState.FAIL)]
        assert len(failed) == before.get(name, {}).get(TrialState.RUNNING, 0)
        assert all(t.user_attrs["fail_reason"] == STALE_REASON for t in failed)
        assert all(t.user_attrs["flops_used"] > 0 for t in complete)
        values = {t.number: t.value for t in complete}
        assert all(values[n] == v for n, v in kept.get(name, {}).items())  # earlier results kept as they were
    shutil.rmtree(ray_tmp, ignore_errors=True)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_sigterm_or_sigint_stops_cleanly_fails_running_trials_and_leaves_no_ray_processes(tmp_path, signum):
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    command, env, url, ray_tmp = _driver_command(tmp_path)
    driver = None
    try:
        driver = _start_until(command, env, tmp_path, url, complete=0)
        driver.send_signal(signum)                                  # the driver only, as a scheduler would
        code = driver.wait(timeout=60)
        err = driver.stderr.read().decode()
        left = _ray_left(ray_tmp)
    finally:
        _clean_up(driver, ray_tmp)
    assert code == 130 and "interrupted" in err
    assert "Traceback" not in err and "Stack trace" not in err and "*** SIG" not in err
    assert left == [], "Ray processes of the stopped driver are still alive 10 s later"
    counts = _counts(url)
    assert sum(c[TrialState.RUNNING] for c in counts.values()) == 0
    failed = [t for name in counts for t in optuna.load_study(study_name=name, storage=url).trials
              if t.state == TrialState.FAIL]
    assert failed and all(t.user_attrs["fail_reason"] == INTERRUPTED_REASON for t in failed)
    again = subprocess.run(command, env=env, cwd=tmp_path, capture_output=True, timeout=300)
    assert again.returncode == 0, again.stderr.decode()
    shutil.rmtree(ray_tmp, ignore_errors=True)
