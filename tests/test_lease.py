"""One driver per study: a live lease of another driver refuses a run before anything is written."""

from __future__ import annotations

import dataclasses
import socket
import subprocess
import sys
import time

import optuna
import pytest

from study import schema
from study.config import TrainingConfig, load_config
from study.errors import ConfigError
from study.lease import LeaseKeeper, check_free
from study.pipeline import run_study
from study.resume import prepare_studies
from study.storage import open_storage

optuna.logging.set_verbosity(optuna.logging.WARNING)


def _snapshot(url: str) -> dict:
    return {s.study_name: (s.user_attrs, [(t.state, t.params, t.user_attrs)
                                          for t in optuna.load_study(study_name=s.study_name, storage=url).trials])
            for s in optuna.get_all_study_summaries(url)}


@pytest.fixture
def stored(tmp_path):
    url = f"sqlite:///{tmp_path / 's.db'}"
    config = dataclasses.replace(load_config(), families=("transformer",), budgets=(1e10,), storage=url,
                                 training=TrainingConfig())
    storage = open_storage(url)
    prepare_studies(storage, config, "key")
    return url, storage, config


def test_a_live_lease_of_another_driver_refuses_naming_the_study_and_driver(stored):
    url, storage, _ = stored
    first = LeaseKeeper(storage, ["transformer/1e+10"], renew=0.05)
    first.acquire()
    try:
        with pytest.raises(ConfigError, match=r"transformer/1e\+10.*another driver"):
            check_free(storage, ["transformer/1e+10"], "someone-else")
        time.sleep(0.2)                                               # renewed in the background
        lease = schema.read_lease(optuna.load_study(study_name="transformer/1e+10", storage=url).user_attrs)
        assert lease.owner == first.owner and lease.expires > time.time() + 50
    finally:
        first.release()
    check_free(storage, ["transformer/1e+10"], "someone-else")      # released: free at once


def test_run_study_is_refused_while_another_driver_holds_the_lease_and_writes_nothing(stored, tmp_path):
    url, storage, config = stored
    study = optuna.load_study(study_name="transformer/1e+10", storage=url)
    schema.write_lease(study, schema.Lease("other:1:abc", "elsewhere", 1, time.time() + 60))
    before = _snapshot(url)
    with pytest.raises(ConfigError, match="another driver"):
        run_study(config, cache_dir=tmp_path / "cache")
    assert _snapshot(url) == before
    assert not (tmp_path / "cache").exists()                          # refused before the dataset was touched


def test_an_expired_lease_or_a_dead_local_driver_is_taken_over(stored):
    url, storage, _ = stored
    study = optuna.load_study(study_name="transformer/1e+10", storage=url)
    schema.write_lease(study, schema.Lease("other:1:abc", "elsewhere", 1, time.time() - 1))
    check_free(storage, ["transformer/1e+10"], "me")                # expired
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, check=True).stdout.strip()
    schema.write_lease(study, schema.Lease("other:2:def", socket.gethostname(), int(dead), time.time() + 60))
    check_free(storage, ["transformer/1e+10"], "me")                # same machine, process gone


def test_the_cli_refuses_a_second_driver_in_one_line_before_printing_anything(stored, capsys):
    from study.cli import main

    url, storage, config = stored
    study = optuna.load_study(study_name="transformer/1e+10", storage=url)
    schema.write_lease(study, schema.Lease("other:1:abc", "elsewhere", 1, time.time() + 60))
    before = _snapshot(url)
    code = main(["run", "--storage", url, "--family", "transformer", "--budget", "1e10"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "another driver" in err
    assert _snapshot(url) == before
