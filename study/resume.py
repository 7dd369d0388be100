"""The Optuna storage as the source of truth: check it, open it, create/resume studies, fail stale trials.

Resume model: at start each study's RUNNING trials (left by a dead driver) are marked FAIL, its COMPLETE
trials are counted, and only the remainder is asked for. One driver per study at a time.
"""

from __future__ import annotations

import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from study.config import StudyConfig, study_name
from study.errors import ConfigError, EquiscaleError

STALE_REASON = "driver stopped before the trial finished (stale RUNNING trial failed on resume)"


def check_storage(url: str, *, must_exist: bool = False) -> None:
    """Fail with a one-line error when the storage URL is malformed or unreachable; never creates or writes.

    `must_exist`: an SQLite file must already be there (commands that only read the storage).
    """
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError) as exc:
        raise ConfigError(f"malformed storage URL {url!r}: {exc}") from None
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
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigError(f"storage {url!r} unreachable: {first}") from None


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


def open_storage(url: str):
    """An `optuna.storages.RDBStorage` on the URL (creates the tables of a new database)."""
    import optuna

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
    """Create or load every study, check it matches the config, fail its stale RUNNING trials, count COMPLETE."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    existing = {s.study_name: s for s in optuna.get_all_study_summaries(storage, include_best_trial=False)}
    for family, budget in config.studies():
        name = study_name(family, budget)
        if name in existing:
            _check_compatible(name, existing[name].user_attrs, config, family, budget, dataset_key)
    states = []
    for family, budget in config.studies():
        name = study_name(family, budget)
        study = optuna.create_study(storage=storage, study_name=name, direction="minimize", load_if_exists=True)
        study.set_user_attr("family", family)
        study.set_user_attr("budget", float(budget))
        study.set_user_attr("batch_size", int(config.training.batch_size))
        study.set_user_attr("dataset_key", dataset_key)
        study.set_user_attr("target_trials", int(config.trials))
        stale = fail_stale_trials(study)
        complete = len(study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)))
        states.append(StudyState(name, family, float(budget), complete, config.trials, stale))
    return states


def fail_stale_trials(study) -> int:
    """Mark the study's RUNNING trials FAIL (with the reason as a user attribute); return how many."""
    from optuna.trial import TrialState

    stale = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    for trial in stale:
        study._storage.set_trial_user_attr(trial._trial_id, "fail_reason", STALE_REASON)
        study._storage.set_trial_state_values(trial._trial_id, state=TrialState.FAIL)
    return len(stale)


def _check_compatible(name: str, attrs: dict, config: StudyConfig, family: str, budget: float, key: str) -> None:
    """Refuse to mix trials of different settings into one study (it would corrupt the comparison)."""
    expected = {"family": family, "budget": float(budget), "batch_size": config.training.batch_size, "dataset_key": key}
    for attr, value in expected.items():
        if attr in attrs and attrs[attr] != value:
            raise ConfigError(
                f"study {name!r} in the storage has {attr}={attrs[attr]!r} but this run has {value!r}: "
                f"use another --storage or the original settings"
            )
