"""`equiscale run` refused after Ray started: within seconds, exit 2, one line, and the storage byte-identical.

A trial larger than the cluster (`--cpus-per-trial`/`--gpus-per-trial` above its CPUs/GPUs) was refused only after
the studies were created and their leases and `target_trials` rewritten, and with `max_concurrent = 1` it was not
refused at all (Tune waited for resources forever, the study already changed). The refusals run the real command
(Ray started and stopped by it) in a process of their own, so a hang fails the test instead of stalling it.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cluster.support import kill_marked, marked_env, private_dir
from tests.tiny import tiny_toml

pytestmark = pytest.mark.slow
HUNG = 180   # seconds: far beyond a refusal (Ray's start and stop take a few), far below a hang's end


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _equiscale(args: list[str], cwd: Path, cache: Path, *, timeout: float = HUNG) -> subprocess.CompletedProcess:
    """`python -m study.cli ARGS --quiet` (no progress lines: stderr is the error alone) with a private Ray temp dir; every Ray process it left is killed afterwards."""
    ray_tmp = private_dir("eqr")
    env = marked_env(ray_tmp, RAY_TMPDIR=ray_tmp, EQUISCALE_CACHE_DIR=str(cache))
    try:
        return subprocess.run([sys.executable, "-m", "study.cli", *args, "--quiet"], cwd=cwd, env=env, capture_output=True,
                              text=True, timeout=timeout, start_new_session=True)
    finally:
        kill_marked(ray_tmp, grace=1.0)
        shutil.rmtree(ray_tmp, ignore_errors=True)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A storage holding the tiny study with 1 COMPLETE trial (one real run), and the dataset cache."""
    root = tmp_path_factory.mktemp("trained")
    (root / "study.toml").write_text(tiny_toml(budgets=[1e9], trials=1))
    done = _equiscale(["run", "study.toml", "--storage", f"sqlite:///{root / 'kept.db'}"], root,
                      root / "cache", timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return root


@pytest.fixture
def stored(trained, tmp_path):
    """A copy of the trained storage (a refusal that wrote would spoil the others' fixture) and its hash."""
    db = tmp_path / "kept.db"
    shutil.copyfile(trained / "kept.db", db)
    (tmp_path / "study.toml").write_text((trained / "study.toml").read_text())
    return db, _sha(db), trained / "cache"


def _refused(result: subprocess.CompletedProcess, *words: str) -> str:
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2, f"exit {result.returncode}\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}"
    assert len(lines) == 1, result.stderr
    assert all(word in lines[0] for word in words), lines[0]
    return lines[0]


def _no_gpu_count() -> str:
    """More GPUs than this machine has (none on CI)."""
    try:
        import torch

        return str(torch.cuda.device_count() + 1)
    except Exception:
        return "1"


@pytest.mark.parametrize("extra", [["--cpus-per-trial", "64"], ["--gpus-per-trial", "GPUS"]])
def test_a_trial_larger_than_the_cluster_is_refused_before_any_write(stored, extra):
    db, before, cache = stored
    extra = [_no_gpu_count() if e == "GPUS" else e for e in extra]
    result = _equiscale(["run", "study.toml", "--storage", f"sqlite:///{db}", "--trials", "4", *extra],
                        db.parent, cache)
    _refused(result, "cannot fit one trial")
    assert _sha(db) == before                         # no new study, lease or target_trials written


def test_with_max_concurrent_1_a_trial_larger_than_the_cluster_is_refused_not_waited_for(stored):
    db, before, cache = stored
    toml = db.parent / "study.toml"
    toml.write_text(toml.read_text().replace("max_concurrent = 2", "max_concurrent = 1"))
    assert "max_concurrent = 1" in toml.read_text()
    result = _equiscale(["run", "study.toml", "--storage", f"sqlite:///{db}", "--trials", "4",
                         "--cpus-per-trial", "64"], db.parent, cache)   # hung past 60 s before (timeout: fails)
    _refused(result, "cannot fit one trial")
    assert _sha(db) == before


def test_a_refused_run_into_a_new_storage_creates_no_file(stored, tmp_path):
    _, _, cache = stored
    result = _equiscale(["run", "study.toml", "--storage", f"sqlite:///{tmp_path / 'new.db'}",
                         "--cpus-per-trial", "64"], tmp_path, cache)
    _refused(result, "cannot fit one trial")
    assert not (tmp_path / "new.db").exists()


def test_a_run_with_other_settings_than_the_stored_study_is_refused_before_any_write(stored):
    db, before, cache = stored
    toml = db.parent / "study.toml"
    toml.write_text(toml.read_text().replace("max_steps = 300", "max_steps = 400"))
    result = _equiscale(["run", "study.toml", "--storage", f"sqlite:///{db}", "--trials", "4"], db.parent, cache)
    _refused(result, "transformer/1e+09", "max_steps")
    assert _sha(db) == before


def test_a_run_while_another_driver_holds_the_study_is_refused_before_any_write(stored):
    import time

    from study.lease import LeaseKeeper
    from study.storage import open_storage

    db, _, cache = stored
    storage = open_storage(f"sqlite:///{db}")
    other = LeaseKeeper(storage, ["transformer/1e+09"], renew=3600)
    other.acquire()                                   # as a live driver on another machine would hold it
    try:
        before = _sha(db)
        result = _equiscale(["run", "study.toml", "--storage", f"sqlite:///{db}", "--trials", "4"], db.parent, cache)
        _refused(result, "transformer/1e+09", "another driver")
        assert _sha(db) == before
    finally:
        other.release()
        storage.engine.dispose()
