"""One driver per study: a lease stored on the study itself, so it holds across machines sharing a storage.

The driver that runs a study writes `lease = {owner, host, pid, expires}` as a study user attribute and
renews it every `RENEW_SECONDS` from a background thread. Another driver finds an unexpired lease of
another owner and is refused (nothing is written); once the owner is dead its lease expires after
`TTL_SECONDS` and the next driver takes the study over (failing the dead driver's RUNNING trials). A
driver on the same machine whose process is gone (e.g. after `kill -9`) is recognised at once.
"""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from pathlib import Path

import optuna

from study import schema
from study.errors import ConfigError
from study.schema import Lease

TTL_SECONDS = 60.0
RENEW_SECONDS = 10.0


def new_owner() -> str:
    """A driver's identity: unique across machines and restarts."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def check_free(storage, names: list[str], owner: str, *, now: float | None = None) -> None:
    """ConfigError naming the study and its driver when any of `names` is leased live by another owner."""
    now = time.time() if now is None else now
    existing = {s.study_name: s for s in optuna.get_all_study_summaries(storage, include_best_trial=False)}
    for name in names:
        if name not in existing:
            continue
        lease = schema.read_lease(existing[name].user_attrs)
        if lease is not None and lease.owner != owner and lease.live(now) and not _dead_here(lease):
            raise ConfigError(
                f"study {name!r} is being run by another driver ({lease.host}, pid {lease.pid}; lease valid for "
                f"{lease.expires - now:.0f} s more): stop it first, or wait {TTL_SECONDS:.0f} s after it died")


def _dead_here(lease: Lease) -> bool:
    """The lease's driver ran on this machine and its process is gone (no need to wait for expiry)."""
    proc = Path("/proc")
    return lease.host == socket.gethostname() and proc.is_dir() and not (proc / str(lease.pid)).exists()


class LeaseKeeper:
    """Holds the lease on some studies for one driver: `acquire`, renewed in the background, `release`."""

    def __init__(self, storage, names: list[str], *, owner: str | None = None,
                 ttl: float = TTL_SECONDS, renew: float = RENEW_SECONDS):
        self.storage, self.names, self.ttl, self.renew = storage, list(names), ttl, renew
        self.owner = owner or new_owner()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _write(self, expires: float) -> None:
        lease = Lease(self.owner, socket.gethostname(), os.getpid(), expires)
        for name in self.names:
            schema.write_lease(optuna.load_study(study_name=name, storage=self.storage), lease)

    def acquire(self) -> None:
        """Take every study's lease (they must exist: call after the studies are created) and start renewing."""
        check_free(self.storage, self.names, self.owner)
        self._write(time.time() + self.ttl)
        check_free(self.storage, self.names, self.owner)   # another driver that wrote at the same moment wins
        self._thread = threading.Thread(target=self._keep, name="equiscale-lease", daemon=True)
        self._thread.start()

    def _keep(self) -> None:
        while not self._stop.wait(self.renew):
            try:
                self._write(time.time() + self.ttl)
            except Exception:  # a busy or briefly unreachable storage: the lease lasts 6 renewals, try again
                continue

    def release(self) -> None:
        """Stop renewing and let the lease expire now."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._write(0.0)
