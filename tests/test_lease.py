"""One driver per study: a lease row per study, taken atomically before anything else is written; a live lease
of another driver refuses a run with nothing written and no row left behind."""

from __future__ import annotations

import dataclasses
import socket
import subprocess
import sys
import time

import optuna
import pytest
import sqlalchemy

from study import lease as lease_module
from study import schema
from study.config import TrainingConfig, load_config, resolve
from study.errors import ConfigError
from study.lease import TABLE, LeaseKeeper, check_free, holders, leases
from study.pipeline import run_study
from study.resume import prepare_studies
from study.storage import open_storage

optuna.logging.set_verbosity(optuna.logging.WARNING)
NAME = "transformer/1e+10"


def _snapshot(url: str) -> dict:
    return {s.study_name: (s.user_attrs, [(t.state, t.params, t.user_attrs)
                                          for t in optuna.load_study(study_name=s.study_name, storage=url).trials])
            for s in optuna.get_all_study_summaries(url)}


def _put(storage, name: str, *, owner: str, host: str, pid: int, expires: float) -> None:
    """A lease row as another driver would have left it."""
    lease_module._create_table(storage.engine)
    with storage.engine.begin() as connection:
        connection.execute(leases.delete().where(leases.c.study_name == name))
        connection.execute(leases.insert().values(study_name=name, owner=owner, host=host, pid=pid,
                                                  expires=expires))


def _dead_pid() -> int:
    return int(subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                              text=True, check=True).stdout)


@pytest.fixture
def stored(tmp_path):
    url = f"sqlite:///{tmp_path / 's.db'}"
    config = dataclasses.replace(load_config(), families=("transformer",), budgets=(1e10,), storage=url,
                                 training=TrainingConfig())
    storage = open_storage(url)
    prepare_studies(storage, resolve(config), "key")
    return url, storage, config


def test_a_live_lease_refuses_another_driver_is_renewed_and_its_row_is_deleted_on_release(stored):
    url, storage, _ = stored
    first = LeaseKeeper(storage, [NAME], renew=0.05)
    first.acquire()
    try:
        with pytest.raises(ConfigError, match=r"transformer/1e\+10.*another driver"):
            check_free(storage, [NAME], "someone-else")
        with pytest.raises(ConfigError, match=r"transformer/1e\+10.*another driver"):
            LeaseKeeper(storage, [NAME]).acquire()
        taken = holders(storage)[NAME].expires
        time.sleep(0.3)                                               # renewed in the background
        held = holders(url)[NAME]
        assert held.owner == first.owner and held.expires > taken and held.expires > time.time() + 50
        assert list(holders(storage)) == [NAME]                       # the refused driver left no row
    finally:
        first.release()
    assert holders(storage) == {}                                     # released: the row is gone
    check_free(storage, [NAME], "someone-else")                       # free at once
    second = LeaseKeeper(storage, [NAME])
    second.acquire()
    second.release()


def test_the_lease_is_taken_by_study_name_before_the_study_exists(tmp_path):
    url = f"sqlite:///{tmp_path / 'new.db'}"
    storage = open_storage(url)
    keeper = LeaseKeeper(storage, ["gatr/1e+12", "transformer/1e+12"])
    keeper.acquire()
    try:
        assert set(holders(storage)) == {"gatr/1e+12", "transformer/1e+12"}
        assert optuna.get_all_study_summaries(storage) == []
        with pytest.raises(ConfigError, match="gatr/1e"):
            check_free(url, ["gatr/1e+12"])
    finally:
        keeper.release()


def test_a_refusal_on_one_study_takes_none_of_the_others(stored):
    _, storage, _ = stored
    first = LeaseKeeper(storage, [NAME])
    first.acquire()
    try:
        other = LeaseKeeper(storage, ["gatr/1e+10", NAME, "transformer/1e+12"])
        with pytest.raises(ConfigError, match="another driver"):
            other.acquire()
        assert list(holders(storage)) == [NAME]                        # all or none: no row of the refused driver
        other.release()                                                 # a refused keeper releases nothing
        assert holders(storage)[NAME].owner == first.owner
    finally:
        first.release()


def test_a_concurrent_insert_is_caught_by_the_primary_key(stored, monkeypatch):
    """The read says "free" (as when another driver inserts between our read and our write): the INSERT then
    fails on the study name's unique key, the transaction rolls back, and the second read refuses."""
    _, storage, _ = stored
    _put(storage, NAME, owner="other:1:abc", host="elsewhere", pid=1, expires=time.time() + 60)
    real, reads = lease_module._rows, []

    def stale_first(connection, names):
        reads.append(names)
        return {} if len(reads) == 1 else real(connection, names)

    monkeypatch.setattr(lease_module, "_rows", stale_first)
    with pytest.raises(ConfigError, match="another driver"):
        LeaseKeeper(storage, ["gatr/1e+10", NAME]).acquire()
    assert len(reads) == 2
    assert list(holders(storage)) == [NAME] and holders(storage)[NAME].owner == "other:1:abc"


def test_a_take_over_is_a_compare_and_set_on_the_row_read(stored, monkeypatch):
    """Two drivers taking over one expired lease: the second's UPDATE no longer matches (the first renewed the
    row meanwhile), so it rolls back, reads again and is refused."""
    _, storage, _ = stored
    _put(storage, NAME, owner="winner:1:abc", host="elsewhere", pid=1, expires=time.time() + 60)
    real, reads = lease_module._rows, []

    def stale_first(connection, names):
        reads.append(names)
        if len(reads) == 1:
            return {NAME: schema.Lease("dead:2:def", "elsewhere", 2, time.time() - 5)}   # what it saw before
        return real(connection, names)

    monkeypatch.setattr(lease_module, "_rows", stale_first)
    with pytest.raises(ConfigError, match="another driver"):
        LeaseKeeper(storage, [NAME]).acquire()
    assert holders(storage)[NAME].owner == "winner:1:abc"


def test_an_expired_lease_or_a_dead_local_driver_is_taken_over(stored):
    _, storage, _ = stored
    _put(storage, NAME, owner="other:1:abc", host="elsewhere", pid=1, expires=time.time() - 1)
    check_free(storage, [NAME], "me")                                # expired
    keeper = LeaseKeeper(storage, [NAME])
    keeper.acquire()
    assert holders(storage)[NAME].owner == keeper.owner
    keeper.release()
    _put(storage, NAME, owner="other:2:def", host=socket.gethostname(), pid=_dead_pid(), expires=time.time() + 60)
    check_free(storage, [NAME], "me")                                # same machine, process gone
    keeper = LeaseKeeper(storage, [NAME])
    keeper.acquire()
    assert holders(storage)[NAME].owner == keeper.owner
    keeper.release()
    _put(storage, NAME, owner="other:3:ghi", host="elsewhere", pid=_dead_pid(), expires=time.time() + 60)
    with pytest.raises(ConfigError, match="another driver"):          # another machine: wait for the expiry
        LeaseKeeper(storage, [NAME]).acquire()


def test_run_study_is_refused_while_another_driver_holds_the_lease_and_writes_nothing(stored, tmp_path):
    url, storage, config = stored
    _put(storage, NAME, owner="other:1:abc", host="elsewhere", pid=1, expires=time.time() + 60)
    before, rows = _snapshot(url), holders(url)
    with pytest.raises(ConfigError, match="another driver"):
        run_study(config, cache_dir=tmp_path / "cache")
    assert _snapshot(url) == before and holders(url) == rows
    assert not (tmp_path / "cache").exists()                          # refused before the dataset was touched


def test_a_live_lease_stored_on_the_study_by_an_earlier_version_still_refuses(stored, tmp_path):
    url, storage, config = stored
    study = optuna.load_study(study_name=NAME, storage=url)
    schema.write_lease(study, schema.Lease("other:1:abc", "elsewhere", 1, time.time() + 60))
    before = _snapshot(url)
    with pytest.raises(ConfigError, match="another driver"):
        run_study(config, cache_dir=tmp_path / "cache")
    assert _snapshot(url) == before


def test_the_cli_refuses_a_second_driver_in_one_line_before_printing_anything(stored, capsys):
    from study.cli import main

    url, storage, config = stored
    _put(storage, NAME, owner="other:1:abc", host="elsewhere", pid=1, expires=time.time() + 60)
    storage.engine.dispose()
    before, path = _snapshot(url), url.removeprefix("sqlite:///")
    data = open(path, "rb").read()
    code = main(["run", "--storage", url, "--family", "transformer", "--budget", "1e10"])
    captured = capsys.readouterr()
    err = captured.err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "another driver" in err and captured.out == ""
    assert _snapshot(url) == before and open(path, "rb").read() == data


def test_reading_the_leases_never_creates_the_table(stored):
    url, storage, _ = stored
    path = url.removeprefix("sqlite:///")
    storage.engine.dispose()
    data = open(path, "rb").read()
    assert holders(url) == {} and holders(storage, [NAME]) == {}
    check_free(url, [NAME])
    check_free(storage, [NAME])
    assert TABLE not in sqlalchemy.inspect(storage.engine).get_table_names()
    storage.engine.dispose()
    assert open(path, "rb").read() == data


def test_a_keeper_notices_a_lease_taken_over_while_it_stalled(stored):
    _, storage, _ = stored
    keeper = LeaseKeeper(storage, [NAME], renew=0.05)
    keeper.acquire()
    try:
        _put(storage, NAME, owner="thief:1:abc", host="elsewhere", pid=1, expires=time.time() + 60)
        deadline = time.monotonic() + 10
        while not keeper.lost and time.monotonic() < deadline:
            time.sleep(0.05)
        assert keeper.lost == [NAME]
    finally:
        keeper.release()
    assert holders(storage)[NAME].owner == "thief:1:abc"               # release deletes only its own rows
