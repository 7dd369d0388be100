"""One driver per study: a lease row per study in the storage's own database, taken atomically.

The leases live in a table of their own, `equiscale_leases` (study name as primary key; owner, host, pid,
expiry in seconds since the epoch), beside Optuna's tables in the same database, so they hold across
machines sharing a storage and need no study to exist yet. A driver takes the leases of all its studies
in one transaction before it writes anything else (`LeaseKeeper.acquire`):

- a study without a row: INSERT (the primary key makes a concurrent second INSERT fail: that driver rolls
  back, reads again and is refused);
- a row of an expired lease, or of a driver on this machine whose process is gone (`kill -9`): taken over
  by an UPDATE whose WHERE clause repeats what was read (compare-and-set: of two drivers taking over at once
  only one UPDATE matches);
- a row of a live lease of another driver: the transaction is rolled back and the driver refused
  (`ConfigError`, one line): its rows are never left behind, and nothing else was written.

The leases are renewed every `RENEW_SECONDS` from a background thread and deleted when the driver ends
(`release`); a driver that died leaves its rows, which expire after `TTL_SECONDS`. Works on SQLite and
PostgreSQL (plain INSERT/UPDATE/DELETE in a transaction, conflicts retried). Reading the leases
(`check_free`, `holders`) never creates the table, so read-only commands stay read-only.

Studies run by equiscale before this table existed carried their lease as a study user attribute
(`schema.LEASE`); a live one of those still refuses a run (`check_free`).
"""

from __future__ import annotations

import os
import random
import socket
import threading
import time
import uuid
from pathlib import Path

import optuna
from sqlalchemy import Column, Float, Integer, MetaData, String, Table, create_engine, delete, inspect, select, update
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError, ProgrammingError

from study import schema
from study.errors import ConfigError, EquiscaleError
from study.schema import Lease

TTL_SECONDS = 60.0
RENEW_SECONDS = 10.0
TABLE = "equiscale_leases"
_ATTEMPTS = 20          # conflicts (a concurrent INSERT, a locked SQLite file, a deadlock) are retried this often

_metadata = MetaData()
leases = Table(
    TABLE, _metadata,
    Column("study_name", String(512), primary_key=True),
    Column("owner", String(256), nullable=False),
    Column("host", String(256), nullable=False),
    Column("pid", Integer, nullable=False),
    Column("expires", Float, nullable=False),
)


def new_owner() -> str:
    """A driver's identity: unique across machines and restarts."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


# ------------------------------------------------------------------------------------------------ reading

def _engine(storage):
    """(engine, dispose?) of an `RDBStorage` (its own engine) or a URL (a new engine, to be disposed)."""
    engine = getattr(storage, "engine", None)
    if engine is not None:
        return engine, False
    from sqlalchemy.engine import make_url

    from study.storage import _timeout_args

    url = str(storage)
    return create_engine(url, connect_args=_timeout_args(make_url(url).get_backend_name())), True


def _rows(connection, names: list[str]) -> dict[str, Lease]:
    result = connection.execute(select(leases).where(leases.c.study_name.in_(names)))
    return {row.study_name: Lease(row.owner, row.host, int(row.pid), float(row.expires)) for row in result}


def holders(storage, names: list[str] | None = None) -> dict[str, Lease]:
    """The lease rows (study name -> `Lease`, live or not) of `names` (all when None); read only: a database
    without the table has none. `storage`: an `RDBStorage` or a URL (a missing SQLite file has none)."""
    if isinstance(storage, str):
        from study.storage import holds_studies

        if not holds_studies(storage):   # never create a file or a table here
            return {}
    engine, dispose = _engine(storage)
    try:
        if not inspect(engine).has_table(TABLE):
            return {}
        with engine.connect() as connection:
            if names is None:
                result = connection.execute(select(leases))
                return {r.study_name: Lease(r.owner, r.host, int(r.pid), float(r.expires)) for r in result}
            return _rows(connection, list(names))
    finally:
        if dispose:
            engine.dispose()


def _taken(name: str, lease: Lease | None, owner: str, now: float) -> bool:
    return lease is not None and lease.owner != owner and lease.live(now) and not _dead_here(lease)


def _refusal(name: str, lease: Lease, now: float) -> ConfigError:
    return ConfigError(
        f"study {name!r} is being run by another driver ({lease.host}, pid {lease.pid}; lease valid for "
        f"{max(0.0, lease.expires - now):.0f} s more): stop it first, or wait {TTL_SECONDS:.0f} s after it died")


def check_free(storage, names: list[str], owner: str = "", *, now: float | None = None) -> None:
    """ConfigError naming the study and its driver when any of `names` is leased live by another owner.

    Read only (never creates a table or a file): the early refusal of a run, before its dataset is loaded or
    Ray started. `storage`: an `RDBStorage` or a URL. Taking the lease (`LeaseKeeper.acquire`) checks again,
    atomically."""
    from study.storage import holds_studies, open_storage

    now = time.time() if now is None else now
    if isinstance(storage, str):
        if not holds_studies(storage):
            return
        storage = open_storage(storage, read_only=True)
    rows = holders(storage, names)
    for name in names:
        if _taken(name, rows.get(name), owner, now):
            raise _refusal(name, rows[name], now)
    existing = {s.study_name: s for s in optuna.get_all_study_summaries(storage, include_best_trial=False)}
    for name in names:   # a study attribute lease, written by equiscale before the lease table
        legacy = schema.read_lease(existing[name].user_attrs) if name in existing else None
        if _taken(name, legacy, owner, now):
            raise _refusal(name, legacy, now)


def _dead_here(lease: Lease) -> bool:
    """The lease's driver ran on this machine and its process is gone (no need to wait for expiry)."""
    proc = Path("/proc")
    return lease.host == socket.gethostname() and proc.is_dir() and not (proc / str(lease.pid)).exists()


# ------------------------------------------------------------------------------------------------ writing

class _Conflict(Exception):
    """Another driver changed a lease row between our read and our write: roll back, read again."""


def _retryable(exc: Exception) -> bool:
    """A lost race (duplicate key), a locked SQLite file, a deadlock or serialization failure: try again."""
    if isinstance(exc, (_Conflict, IntegrityError)):
        return True
    if isinstance(exc, OperationalError):
        return True  # "database is locked" (SQLite), deadlock detected / could not serialize (PostgreSQL)
    if isinstance(exc, DBAPIError):
        message = str(exc).lower()
        return "deadlock" in message or "serializ" in message or "locked" in message
    return False


def _pause(attempt: int) -> None:
    time.sleep(min(1.0, 0.02 * 2 ** attempt) * (0.5 + random.random()))


def _create_table(engine) -> None:
    """The lease table, made once per database (two drivers creating it at once on PostgreSQL: retried)."""
    for attempt in range(_ATTEMPTS):
        try:
            _metadata.create_all(engine, checkfirst=True)
            return
        except (IntegrityError, ProgrammingError, OperationalError) as exc:
            if attempt + 1 == _ATTEMPTS:
                raise EquiscaleError(f"cannot create the lease table in the storage: {_first_line(exc)}") from None
            _pause(attempt)


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def take(engine, names: list[str], lease: Lease, *, now: float | None = None) -> None:
    """Take the lease of every study in `names` for `lease.owner`, all or none, in one transaction.

    Refused (ConfigError, nothing written, no row left) when one is held live by another driver."""
    names = sorted(set(names))   # one order for every driver: no deadlock between two of them
    for attempt in range(_ATTEMPTS):
        try:
            with engine.begin() as connection:
                at = time.time() if now is None else now
                rows = _rows(connection, names)
                for name in names:
                    held = rows.get(name)
                    if _taken(name, held, lease.owner, at):
                        raise _refusal(name, held, at)
                values = dict(owner=lease.owner, host=lease.host, pid=lease.pid, expires=lease.expires)
                for name in names:
                    held = rows.get(name)
                    if held is None:
                        connection.execute(leases.insert().values(study_name=name, **values))
                        continue
                    # compare-and-set on what was read: of two drivers taking over one row only one matches
                    done = connection.execute(update(leases).where(
                        leases.c.study_name == name, leases.c.owner == held.owner,
                        leases.c.expires == held.expires).values(**values))
                    if done.rowcount != 1:
                        raise _Conflict(name)
            return
        except ConfigError:
            raise
        except Exception as exc:
            if not _retryable(exc) or attempt + 1 == _ATTEMPTS:
                raise EquiscaleError(f"cannot take the lease of {', '.join(names)}: {_first_line(exc)}") from None
            _pause(attempt)


class LeaseKeeper:
    """Holds the lease on some studies for one driver: `acquire` (atomic), renewed in the background, `release`.

    `storage`: an `optuna.storages.RDBStorage` (its engine is used) or anything with an `engine`."""

    def __init__(self, storage, names: list[str], *, owner: str | None = None,
                 ttl: float = TTL_SECONDS, renew: float = RENEW_SECONDS):
        self.storage, self.names, self.ttl, self.renew = storage, sorted(set(names)), ttl, renew
        self.owner = owner or new_owner()
        self.lost: list[str] = []    # studies whose lease another driver took over (this one stalled past expiry)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._held = False

    @property
    def engine(self):
        return self.storage.engine

    def _lease(self, expires: float) -> Lease:
        return Lease(self.owner, socket.gethostname(), os.getpid(), expires)

    def acquire(self) -> None:
        """Take every study's lease in one transaction (the studies need not exist yet) and start renewing.

        ConfigError (one line) when another live driver holds one: nothing is written, no row left."""
        if not inspect(self.engine).has_table(TABLE):
            _create_table(self.engine)
        take(self.engine, self.names, self._lease(time.time() + self.ttl))
        self._held = True
        self._thread = threading.Thread(target=self._keep, name="equiscale-lease", daemon=True)
        self._thread.start()

    def _renew(self) -> None:
        with self.engine.begin() as connection:
            done = connection.execute(update(leases).where(
                leases.c.study_name.in_(self.names), leases.c.owner == self.owner).values(
                expires=time.time() + self.ttl))
            if done.rowcount != len(self.names):
                mine = {n for n, lease in _rows(connection, self.names).items() if lease.owner == self.owner}
                self.lost = sorted(set(self.names) - mine)

    def _keep(self) -> None:
        while not self._stop.wait(self.renew):
            try:
                self._renew()
            except Exception:  # a busy or briefly unreachable storage: the lease lasts 6 renewals, try again
                continue

    def release(self) -> None:
        """Stop renewing and delete this driver's lease rows (another driver may start at once)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if not self._held:
            return
        for attempt in range(_ATTEMPTS):
            try:
                with self.engine.begin() as connection:
                    connection.execute(delete(leases).where(leases.c.study_name.in_(self.names),
                                                            leases.c.owner == self.owner))
                self._held = False
                return
            except Exception as exc:
                if not _retryable(exc) or attempt + 1 == _ATTEMPTS:
                    return  # unreachable storage: the rows expire after the TTL
                _pause(attempt)
