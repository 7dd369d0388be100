"""Optuna storages by URL: check a URL without writing, open it (read-only commands never create tables).

Kept free of torch and the study configuration, so that the analysis commands start fast.
"""

from __future__ import annotations

import os
import random
import sqlite3
import time
from pathlib import Path

import optuna
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, IntegrityError, OperationalError, ProgrammingError

from study.errors import ConfigError, EquiscaleError

DEFAULT_STORAGE = "sqlite:///equiscale.db"


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
        raise ConfigError(f"storage {url!r} unusable: {first_line(exc)}") from None
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database or ""
        if database in ("", ":memory:") or database.startswith("file::memory:"):
            raise ConfigError(f"storage {url!r} is in memory: give a file (sqlite:///path.db) to keep the trials")
        path = Path(database)
        if path.exists():
            tables = _sqlite_tables(url, path)
            if not must_exist and tables and not OPTUNA_TABLES <= tables:  # someone else's database: keep it as it is
                raise ConfigError(f"storage {url!r} is an SQLite database of something else (tables "
                                  f"{', '.join(sorted(tables)[:3])}{', ...' if len(tables) > 3 else ''}) and holds "
                                  f"no Optuna studies: give a new file")
            if not must_exist and not (os.access(path, os.W_OK) and os.access(path.parent, os.W_OK)):
                raise ConfigError(f"storage {url!r} is read-only (SQLite needs to write the file and a journal "
                                  f"beside it): copy it somewhere writable to add trials")
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
        raise ConfigError(f"storage {url!r} unreachable: {first_line(exc)}") from None


def first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def _timeout_args(backend: str) -> dict:
    return {"connect_timeout": 5} if backend in ("postgresql", "mysql") else {}


def _sqlite_tables(url: str, path: Path) -> set[str]:
    """The tables of an existing file, which must be an SQLite database (opened read-only: left untouched)."""
    try:
        connection = sqlite3.connect(f"file:{path.resolve()}?mode=ro", uri=True)
        try:
            rows = connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
        finally:
            connection.close()
    except sqlite3.Error as exc:
        raise ConfigError(f"storage {url!r} unusable: {exc}") from None
    return {name for (name,) in rows}


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
        raise EquiscaleError(f"cannot open storage {url!r}: {first_line(exc)}") from None
    return OPTUNA_TABLES <= tables


def open_storage(url: str, *, read_only: bool = False):
    """An `optuna.storages.RDBStorage` on the URL (creates the tables of a new database).

    `read_only`: the database must already be an Optuna storage (commands that only read never create
    tables in an empty or foreign database)."""
    if read_only and not holds_studies(url):
        raise ConfigError(f"storage {url!r} holds no Optuna studies (run `equiscale run` first)")
    for attempt in range(_CREATE_ATTEMPTS):
        try:
            return optuna.storages.RDBStorage(url)
        except Exception as exc:
            if attempt + 1 < _CREATE_ATTEMPTS and _lost_creation_race(exc):
                time.sleep(0.2 * 2**attempt * (1 + random.random()))
                continue
            raise EquiscaleError(f"cannot open storage {url!r}: {first_line(exc)}") from None


_CREATE_ATTEMPTS = 6


def _lost_creation_race(exc: Exception) -> bool:
    """Whether opening failed because another process was creating Optuna's tables in the same new database
    at that moment (drivers started together on a fresh PostgreSQL or SQLite file: a table or type already
    made, the version row already written, the SQLite file locked): then opening again finds them made."""
    message = str(exc).lower()
    if isinstance(exc, OperationalError):  # SQLite: "table ... already exists", "database is locked"
        return "already exists" in message or "database is locked" in message
    return isinstance(exc, (IntegrityError, ProgrammingError)) and (
        "already exists" in message or "duplicate" in message
        or ("unique constraint" in message and ("alembic_version" in message or "version_info" in message)))
