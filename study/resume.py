"""The Optuna storage as the source of truth: check it, open it, create/resume studies, fail stale trials.

Resume model: at start each study's RUNNING trials (left by a dead driver) are marked FAIL, its COMPLETE
trials are counted, and only the remainder is asked for. One driver per study at a time.
"""

from __future__ import annotations

import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path

import optuna
from optuna.trial import TrialState
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from study import schema
from study.adapter import fail_trial
from study.config import StudyConfig, settings
from study.errors import ConfigError, EquiscaleError
from study.schema import StudyAttrs, study_name

STALE_REASON = "driver stopped before the trial finished (stale RUNNING trial failed on resume)"
INTERRUPTED_REASON = "driver interrupted (SIGINT/SIGTERM) before the trial finished"


def check_storage(url: str, *, must_exist: bool = False) -> None:
    """Fail with a one-line error when the storage URL is malformed or unreachable; never creates or writes.

    `must_exist`: an SQLite file must already be there (commands that only read the storage).
    """
    if "\x00" in url:  # from a TOML escape or Python: no file name or host can hold it
        raise ConfigError(f"malformed storage URL {url!r}: it contains a NUL character")
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError) as exc:
        raise ConfigError(f"malformed storage URL {url!r}: {exc}") from None
    try:
        parsed.get_dialect()  # an unknown dialect or driver (sqlite+nodriver://) fails here, before any file is made
    except Exception as exc:
        raise ConfigError(f"storage {url!r} unusable: {_first_line(exc)}") from None
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database or ""
        if database in ("", ":memory:") or database.startswith("file::memory:"):
            raise ConfigError(f"storage {url!r} is in memory: give a file (sqlite:///path.db) to keep the trials")
        path = Path(database)
        if path.exists():
            _check_sqlite_file(url, path)
        elif must_exist:
            raise ConfigError(f"storage {url!r} not found: no file {str(path)!r} (run `equiscale run` first)")
        elif not path.parent.is_dir():
            raise ConfigError(f"storage {url!r} unreachable: directory {str(path.parent)!r} does not exist")
        elif not os.access(path.parent, os.W_OK):
            raise ConfigError(f"storage {url!r} unreachable: directory {str(path.parent)!r} is not writable")
        return
    try:
        engine = create_engine(url, connect_args=_timeout_args(parsed.get_backend_name()))
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        engine.dispose()
    except Exception as exc:  # driver missing, host down, bad credentials: all "unreachable"
        raise ConfigError(f"storage {url!r} unreachable: {_first_line(exc)}") from None


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def _timeout_args(backend: str) -> dict:
    return {"connect_timeout": 5} if backend in ("postgresql", "mysql") else {}


def _check_sqlite_file(url: str, path: Path) -> None:
    """An existing file must be an SQLite database (opened read-only, so it is left untouched)."""
    try:
        connection = sqlite3.connect(f"file:{path.resolve()}?mode=ro", uri=True)
        try:
            connection.execute("SELECT name FROM sqlite_master LIMIT 1").fetchall()
        finally:
            connection.close()
    except sqlite3.Error as exc:
        raise ConfigError(f"storage {url!r} unusable: {exc}") from None


OPTUNA_TABLES = {"studies", "trials", "version_info"}


def holds_studies(url: str) -> bool:
    """Whether the database at `url` has Optuna's tables (read without writing; a missing SQLite file has none)."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and not Path(parsed.database or "").is_file():
        return False
    try:
        engine = create_engine(url, connect_args=_timeout_args(parsed.get_backend_name()))
        tables = set(inspect(engine).get_table_names())
        engine.dispose()
    except Exception as exc:  # driver missing, host down, not a database: all "cannot open"
        raise EquiscaleError(f"cannot open storage {url!r}: {_first_line(exc)}") from None
    return OPTUNA_TABLES <= tables


def open_storage(url: str, *, read_only: bool = False):
    """An `optuna.storages.RDBStorage` on the URL (creates the tables of a new database).

    `read_only`: the database must already be an Optuna storage (commands that only read never create
    tables in an empty or foreign database)."""
    if read_only and not holds_studies(url):
        raise ConfigError(f"storage {url!r} holds no Optuna studies (run `equiscale run` first)")
    try:
        return optuna.storages.RDBStorage(url)
    except Exception as exc:
        raise EquiscaleError(f"cannot open storage {url!r}: {exc}") from None


@dataclass(frozen=True)
class StudyState:
    """One study at the start of a run: how many COMPLETE trials exist and how many are still wanted."""

    name: str
    family: str
    budget: float
    complete: int
    target: int
    stale_failed: int

    @property
    def remaining(self) -> int:
        return max(0, self.target - self.complete)


def prepare_studies(storage, config: StudyConfig, dataset_key: str) -> list[StudyState]:
    """Create or load every study, check it matches the config, fail its stale RUNNING trials, count COMPLETE.

    Every existing study is checked before any is created or changed, so a refused run writes nothing.
    """
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    existing = {s.study_name: s for s in optuna.get_all_study_summaries(storage, include_best_trial=False)}
    wanted = {name: study_attrs(config, family, budget, dataset_key)
              for name, (family, budget) in zip(_names(config), config.studies())}
    for name, attrs in wanted.items():
        if name in existing:
            check_compatible(name, existing[name].user_attrs, attrs)
    states = []
    for name, attrs in wanted.items():
        study = optuna.create_study(storage=storage, study_name=name, direction="minimize", load_if_exists=True)
        schema.write_study_attrs(study, attrs)
        stale = fail_stale_trials(study)
        complete = len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))
        states.append(StudyState(name, attrs.family, attrs.budget, complete, config.trials, stale))
    return states


def _names(config: StudyConfig) -> list[str]:
    return [study_name(family, budget) for family, budget in config.studies()]


def study_attrs(config: StudyConfig, family: str, budget: float, dataset_key: str) -> StudyAttrs:
    """The attributes a study of this run carries."""
    return StudyAttrs(family=family, budget=float(budget), batch_size=int(config.batch_size_for(budget)),
                      dataset_key=dataset_key, target_trials=int(config.trials), settings=settings(config))


def fail_stale_trials(study, reason: str = STALE_REASON) -> int:
    """Mark the study's RUNNING trials FAIL (with the reason as a user attribute); return how many."""
    stale = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    for trial in stale:
        fail_trial(study, trial, reason)
    return len(stale)


def check_compatible(name: str, stored: dict, attrs: StudyAttrs) -> None:
    """Refuse to mix trials of different settings into one study (it would corrupt the comparison).

    A study stored before settings were recorded is checked on what it has.
    """
    old = schema.read_study_attrs(stored)
    if old is None:
        raise ConfigError(f"study {name!r} in the storage was not made by equiscale (no family/budget attributes): "
                          f"use another --storage")
    pairs = [("family", old.family, attrs.family), ("budget", old.budget, attrs.budget),
             ("batch_size", old.batch_size, attrs.batch_size), ("dataset_key", old.dataset_key, attrs.dataset_key)]
    pairs += [(key, value, attrs.settings.get(key)) for key, value in sorted((old.settings or {}).items())]
    for key, was, now in pairs:
        if was != now:
            raise ConfigError(f"study {name!r} in the storage has {key}={was!r} but this run has {now!r}: "
                              f"use another --storage or the original settings")
