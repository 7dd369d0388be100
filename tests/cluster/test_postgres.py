"""A PostgreSQL storage, as a cluster shares it: a study run into it, two drivers on different studies of one
database at once, and one driver per study (a second is refused while the first lives, and takes over once
it is dead). Each test gets a fresh database on the session's private server (`postgres_url`)."""

from __future__ import annotations

import math
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
import sqlalchemy

from study import schema
from study.benchmark import load_dataset
from study.config import settings, study_name
from study.flops import param_count, step_flops
from study.lease import holders
from study.pipeline import run_study
from study.resume import STALE_REASON
from study.storage import open_storage
from tests.tiny import tiny_config, tiny_toml

pytestmark = pytest.mark.slow
TrialState = optuna.trial.TrialState
optuna.logging.set_verbosity(optuna.logging.WARNING)


def states(url: str, name: str) -> list[TrialState]:
    return [t.state for t in optuna.load_study(study_name=name, storage=url).trials]


def equiscale_status(url: str) -> subprocess.CompletedProcess:
    equiscale = Path(sys.executable).parent / "equiscale"
    return subprocess.run([str(equiscale), "status", "--storage", url], capture_output=True, text=True, timeout=120)


def test_a_study_on_postgresql_stores_complete_trials_with_their_attributes(postgres_url, tmp_path, ray_tmpdir):
    config = tiny_config(postgres_url, trials=2)
    started = time.monotonic()
    summary = run_study(config, cache_dir=tmp_path / "cache")
    print(f"tiny study on PostgreSQL: {time.monotonic() - started:.0f} s")
    assert summary.short == () and [r.complete for r in summary.rows] == [2, 2, 2, 2]
    assert summary.storage == postgres_url
    dataset = load_dataset(config.data.benchmark(), cache_dir=tmp_path / "cache")  # the key the run used
    assert holders(postgres_url) == {}                                 # the lease rows deleted when the run ended

    t = config.training
    for family, budget in config.studies():
        study = optuna.load_study(study_name=study_name(family, budget), storage=postgres_url)
        attrs = dict(study.user_attrs)
        assert attrs["settings"] == settings(config) and attrs["dataset_key"] == dataset.key
        assert (attrs["family"], attrs["budget"], attrs["target_trials"]) == (family, budget, 2)
        assert schema.LEASE not in attrs                               # the lease is a row of its own
        assert [tr.state for tr in study.trials] == [TrialState.COMPLETE] * 2
        for trial in study.trials:
            a = trial.user_attrs
            assert a["params"] == param_count(family, **a["shape"]) == a["measured_params"]
            assert t.min_steps <= a["steps"] <= t.max_steps and a["samples"] == a["steps"] * t.batch_size
            assert a["flops_used"] == pytest.approx(
                a["steps"] * step_flops(family, batch_size=t.batch_size, bodies=3, **a["shape"]))
            assert abs(a["flops_used"] / budget - 1) <= 0.01
            assert trial.value == a["val_loss"] and math.isfinite(a["test_loss"]) and a["node"]
            assert max(trial.intermediate_values) == a["steps"] and len(trial.intermediate_values) == t.evals

    status = equiscale_status(postgres_url)
    assert status.returncode == 0, status.stderr
    for family, budget in config.studies():
        assert study_name(family, budget) in status.stdout


OPEN_AT = """
import sys, time
from study.storage import open_storage
url, at = sys.argv[1], float(sys.argv[2])
time.sleep(max(0.0, at - time.time()))
open_storage(url)
"""


def test_processes_opening_a_fresh_database_at_the_same_moment_all_get_the_storage(postgres_server):
    """Optuna creates its tables on first open; processes racing to do so on one new database (drivers started
    together on a fresh PostgreSQL) must all succeed, not fail on each other's CREATE TYPE/TABLE. Three fresh
    databases, six processes each: without a guard the race is lost in most rounds."""
    for _ in range(3):
        url = postgres_server.create_database()
        at = time.time() + 5.0  # after every process has imported optuna: they open at one moment
        processes = [subprocess.Popen([sys.executable, "-c", OPEN_AT, url, repr(at)],
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(6)]
        results = [(p.wait(timeout=120), p.stderr.read()) for p in processes]
        assert [code for code, _ in results] == [0] * 6, "\n".join(err[-2000:] for _, err in results)
        engine = sqlalchemy.create_engine(url)
        assert {"studies", "trials", "version_info"} <= set(sqlalchemy.inspect(engine).get_table_names())
        engine.dispose()


def test_two_drivers_on_different_studies_of_one_database_at_once(postgres_url, tmp_path, drivers):
    for name, budgets in (("a", [1e9]), ("b", [2e9])):
        (tmp_path / name).mkdir()
        (tmp_path / name / "study.toml").write_text(tiny_toml(budgets=budgets, trials=3))
    cache = tmp_path / "cache"
    started = time.monotonic()
    first = drivers(tmp_path / "a" / "study.toml", postgres_url, cache).start()
    second = drivers(tmp_path / "b" / "study.toml", postgres_url, cache).start()

    # both hold their lease at one moment: they really ran side by side
    together = False
    storage = None
    while first.process.poll() is None and second.process.poll() is None and not together:
        try:
            storage = storage or open_storage(postgres_url, read_only=True)
            owners = {lease.pid for lease in holders(storage).values() if lease.live(time.time())}
            together = owners == {first.process.pid, second.process.pid}
        except Exception:  # the tables or the studies are not there yet
            pass
        time.sleep(0.2)

    results = [first.wait(), second.wait()]
    print(f"two drivers on PostgreSQL: {time.monotonic() - started:.0f} s")
    for code, out, err in results:
        assert code == 0, f"{out}\n{err}"
    assert together, "the two drivers never held their leases at the same time"
    assert states(postgres_url, "transformer/1e+09") == [TrialState.COMPLETE] * 3
    assert states(postgres_url, "transformer/2e+09") == [TrialState.COMPLETE] * 3
    assert {s.study_name for s in optuna.get_all_study_summaries(postgres_url, False)} == {
        "transformer/1e+09", "transformer/2e+09"}
    status = equiscale_status(postgres_url)
    assert status.returncode == 0 and "transformer/1e+09" in status.stdout and "transformer/2e+09" in status.stdout


def test_a_second_driver_on_the_same_study_is_refused_while_the_first_lives_and_takes_over_once_it_died(
        postgres_url, tmp_path, drivers):
    # long enough (trials of a few seconds) that the first driver is still mid-study when it is killed
    (tmp_path / "study.toml").write_text(tiny_toml(budgets=[1e10], trials=6, max_steps=3000))
    cache = tmp_path / "cache"
    name = "transformer/1e+10"
    started = time.monotonic()
    first = drivers(tmp_path / "study.toml", postgres_url, cache).start()

    deadline = time.monotonic() + 240  # the first driver holds the lease and runs a trial
    storage, holding = None, False
    while time.monotonic() < deadline and first.process.poll() is None and not holding:
        try:
            storage = storage or open_storage(postgres_url, read_only=True)
            study = optuna.load_study(study_name=name, storage=storage)
            lease = holders(storage, [name]).get(name)
            holding = (lease is not None and lease.pid == first.process.pid and lease.live(time.time())
                       and TrialState.RUNNING in [t.state for t in study.get_trials(deepcopy=False)])
        except Exception:  # not created yet
            pass
        time.sleep(0.2)
    ended = first.process.poll() is not None
    assert holding, (f"the first driver never held the lease while running a trial: exit {first.process.poll()}"
                     f"{': ' + first.process.stderr.read() if ended else ''}")

    before = [(t.number, t.state) for t in optuna.load_study(study_name=name, storage=postgres_url).trials]
    second = drivers(tmp_path / "study.toml", postgres_url, cache)
    refused = second.run(timeout=120)
    assert refused.returncode == 2, f"{refused.stdout}\n{refused.stderr}"
    lines = refused.stderr.strip().splitlines()
    assert len(lines) == 1 and name in lines[0] and "another driver" in lines[0] and str(first.process.pid) in lines[0]
    assert first.process.poll() is None, "the refused driver disturbed the first"
    status = equiscale_status(postgres_url)                            # readable while a driver runs
    assert status.returncode == 0 and name in status.stdout
    after = {t.number: t.state for t in optuna.load_study(study_name=name, storage=postgres_url).trials}
    assert all(after[number] != TrialState.FAIL for number, _ in before)  # no trial of the first failed by it

    deadline = time.monotonic() + 60                                   # kill it mid-trial
    while time.monotonic() < deadline and first.process.poll() is None and TrialState.RUNNING not in states(
            postgres_url, name):
        time.sleep(0.1)
    first.kill()                                                       # kill -9: its lease stays, unexpired
    running = states(postgres_url, name).count(TrialState.RUNNING)
    assert running >= 1, "the first driver finished before it could be killed mid-trial"
    lease = holders(postgres_url, [name])[name]
    assert lease.pid == first.process.pid and lease.live(time.time())
    took_over = second.run()                                           # a dead driver on this host: at once
    print(f"refusal and take-over on PostgreSQL: {time.monotonic() - started:.0f} s")
    assert took_over.returncode == 0, f"{took_over.stdout}\n{took_over.stderr}"
    trials = optuna.load_study(study_name=name, storage=postgres_url).trials
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    failed = [t for t in trials if t.state == TrialState.FAIL]
    assert len(complete) == 6 and len(complete) + len(failed) == len(trials)
    assert len(failed) == running and all(t.user_attrs["fail_reason"] == STALE_REASON for t in failed)
    status = equiscale_status(postgres_url)
    assert status.returncode == 0 and name in status.stdout
