"""Two drivers on one study started 0-2 s apart, on SQLite and on PostgreSQL: exactly one trains, the other exits 2
with one line having written nothing (it fails no trial of the first), and the study reaches its target.

Two levels, to keep CI short: 10 tries per database of what a driver does once Ray is up (open the storage, take
the lease, fail stale RUNNING trials, write the study's attributes, run its trials: `RACER`, in processes that
start together on a signal), and a few tries per database of the real command (`equiscale run`, Ray included).
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest

from study.lease import holders
from tests.tiny import tiny_config, tiny_toml

pytestmark = pytest.mark.slow
TrialState = optuna.trial.TrialState
optuna.logging.set_verbosity(optuna.logging.WARNING)

TRIES = 10
TRIALS = 2

# A driver after Ray started, as study.pipeline.run_study does it: lease first (refused: one line, exit 2), then
# the studies (stale RUNNING trials failed, attributes written), then the trials; the lease released at the end.
RACER = """
import sys, time
import optuna
from optuna.trial import TrialState
from study.errors import EquiscaleError
from study.lease import LeaseKeeper
from study.storage import open_storage

optuna.logging.set_verbosity(optuna.logging.WARNING)
url, name, trials, seconds = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
print("ready", flush=True)
at = float(sys.stdin.readline())
time.sleep(max(0.0, at - time.time()))
try:
    storage = open_storage(url)
    keeper = LeaseKeeper(storage, [name], renew=0.5)
    keeper.acquire()
except EquiscaleError as exc:
    print(exc, file=sys.stderr)
    sys.exit(2)
try:
    study = optuna.create_study(storage=storage, study_name=name, load_if_exists=True)
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        storage.set_trial_user_attr(trial._trial_id, "fail_reason", "stale")
        storage.set_trial_state_values(trial._trial_id, TrialState.FAIL)
    study.set_user_attr("target_trials", trials)
    done = len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))
    for _ in range(trials - done):
        trial = study.ask()
        time.sleep(seconds)
        study.tell(trial, 1.0)   # raises (exit 1) when another driver failed this RUNNING trial meanwhile
finally:
    keeper.release()
print("trained", flush=True)
"""


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request, tmp_path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'race.db'}"
    return request.getfixturevalue("postgres_url")


def _check(url: str, name: str, results: list[tuple[int, str, str]], target: int) -> None:
    codes = sorted(code for code, _, _ in results)
    detail = "\n".join(f"exit {code}: {out.strip()[-300:]} | {err.strip()[-1500:]}" for code, out, err in results)
    assert codes == [0, 2], f"{name}: exactly one driver must train and the other exit 2\n{detail}"
    (_, _, refusal), = [r for r in results if r[0] == 2]
    lines = refusal.strip().splitlines()
    assert len(lines) == 1 and "another driver" in lines[0] and name in lines[0], detail
    trials = optuna.load_study(study_name=name, storage=url).trials
    assert [t.state for t in trials] == [TrialState.COMPLETE] * target, f"{name}: {[t.state for t in trials]}"


def test_ten_racing_pairs_per_database_one_trains_one_is_refused_without_writing(database):
    """Per try, a study of its own; the second process starts 0-2 s after the first (all tries at once)."""
    racers = []
    for i in range(TRIES):
        for _ in range(2):
            racers.append(subprocess.Popen([sys.executable, "-c", RACER, database, f"race/{i}", str(TRIALS), "2.0"],
                                           stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                           text=True))
    try:
        for racer in racers:   # every process has imported optuna and is waiting
            assert racer.stdout.readline().strip() == "ready", racer.stderr.read()
        start = time.time() + 0.5
        for i in range(TRIES):
            delay = 2.0 * i / (TRIES - 1)                       # 0, 0.22, ..., 2 s
            for racer, at in zip(racers[2 * i: 2 * i + 2], (start, start + delay)):
                racer.stdin.write(f"{at!r}\n")
                racer.stdin.flush()
        results = []
        for racer in racers:
            out, err = racer.communicate(timeout=120)
            results.append((racer.returncode, out, err))
    finally:
        for racer in racers:
            if racer.poll() is None:
                racer.kill()
                racer.wait()
    for i in range(TRIES):
        _check(database, f"race/{i}", results[2 * i: 2 * i + 2], TRIALS)
    assert holders(database) == {}                                  # the winners released, the refused left none


@pytest.mark.parametrize("database, delay", [("sqlite", 0.0), ("postgresql", 2.0)], indirect=["database"])
def test_the_same_command_started_twice_trains_once_and_refuses_once(database, tmp_path, drivers, delay):
    """`equiscale run` twice on one study, Ray and all, the second `delay` s after the first (one try per
    database, at either end of the 0-2 s: each takes half a minute; the ten tries per database are above)."""
    from study.benchmark import load_dataset

    (tmp_path / "study.toml").write_text(tiny_toml(budgets=[1e9], trials=4))
    cache = tmp_path / "cache"
    load_dataset(tiny_config(database).data.benchmark(), cache_dir=cache)   # simulated once, before the race
    started = time.monotonic()
    first = drivers(tmp_path / "study.toml", database, cache).start()
    time.sleep(delay)
    second = drivers(tmp_path / "study.toml", database, cache).start()
    results = [first.wait(timeout=300), second.wait(timeout=300)]
    print(f"two drivers {delay} s apart on {database.split(':')[0]}: {time.monotonic() - started:.0f} s")
    _check(database, "transformer/1e+09", results, 4)
    assert holders(database) == {}
