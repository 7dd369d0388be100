"""The library entry point: run a study from a typed config and get a typed summary back.

config -> checks (storage, Ray address) -> dataset -> one Optuna study per (family, budget) -> Ray Tune
-> trials in the storage -> `StudySummary`. The CLI's `equiscale run` is a thin wrapper around
`run_study`; a notebook calls it the same way.
"""

from __future__ import annotations

import socket
from dataclasses import replace
from pathlib import Path

import optuna

from study.adapter import start_ray
from study.benchmark import load_dataset
from study.config import StudyConfig, validate
from study.errors import EquiscaleError
from study.progress import Progress
from study.lease import LeaseKeeper, check_free
from study.resume import INTERRUPTED_REASON, fail_stale_trials, prepare_studies
from study.storage import check_storage, open_storage
from study.schema import study_name
from study.summary import StudySummary, study_rows
from study.tune import run_studies


def check_address(address: str | None, *, timeout: float = 3.0) -> None:
    """One-line error when a Ray address (host:port, optionally ray://) does not accept connections."""
    if not address or address in ("auto", "local"):
        return
    hostport = address.split("://", 1)[-1]
    host, _, port = hostport.rpartition(":")
    if not host or not port.isdigit():
        raise EquiscaleError(f"malformed Ray address {address!r} (expected HOST:PORT)")
    try:
        socket.create_connection((host, int(port)), timeout=timeout).close()
    except OSError as exc:
        raise EquiscaleError(f"Ray address {address!r} unreachable: {exc.strerror or exc}") from None


def run_study(config: StudyConfig, *, storage: str | None = None, progress: Progress | None = None,
              cache_dir: str | Path | None = None) -> StudySummary:
    """Run (or resume) every (family, budget) study of `config` until each has its target COMPLETE trials.

    The driver holds a lease on its studies in the storage (`study.lease`): a second driver on one of
    them is refused while this one lives. Ctrl-C (KeyboardInterrupt) marks the running trials FAIL and
    shuts Ray down before it propagates; running the same config again resumes.

    `storage` overrides `config.storage`; `progress` prints a line per finished trial (default: quiet);
    `cache_dir` is the dataset cache (default `$EQUISCALE_CACHE_DIR` or ~/.cache/equiscale).
    Everything that can be checked is checked before Ray starts or anything is written.
    """
    if storage is not None:
        config = replace(config, storage=storage)
    validate(config)
    check_storage(config.storage)
    check_address(config.resources.address)
    progress = progress or Progress(enabled=False)

    rdb = open_storage(config.storage)
    names = [study_name(family, budget) for family, budget in config.studies()]
    lease = LeaseKeeper(rdb, names)
    check_free(rdb, names, lease.owner)  # another live driver on one of these studies: refused, nothing written
    d = config.data
    progress.message(f"dataset: {d.scenes} scenes of {d.bodies} bodies (seed {d.seed})")
    dataset = load_dataset(d.benchmark(), cache_dir=cache_dir, progress=progress.enabled)
    states = prepare_studies(rdb, config, dataset.key)
    lease.acquire()
    try:
        todo = sum(s.remaining for s in states)
        progress.message(f"{len(states)} studies, {todo} trial(s) to run -> {config.storage}")
        if todo:
            states = _run_on_ray(config, rdb, states, dataset, progress)
    finally:
        lease.release()
    return StudySummary(storage=config.storage, rows=tuple(study_rows(rdb)),
                        short=tuple(s.name for s in states if s.remaining))


def _run_on_ray(config: StudyConfig, rdb, states, dataset, progress: Progress):
    """Start (or join) Ray, run the studies, shut Ray down; an interrupted run fails its RUNNING trials."""
    import ray

    try:
        start_ray(config.resources.address)
    except (OSError, TimeoutError, RuntimeError, ConnectionError) as exc:
        where = f" at {config.resources.address!r}" if config.resources.address else ""
        raise EquiscaleError(f"cannot start/connect Ray{where}: {exc}") from None
    try:
        return run_studies(config, storage=rdb, states=states, dataset=dataset, progress=progress)
    except KeyboardInterrupt:
        failed = sum(fail_stale_trials(optuna.load_study(study_name=s.name, storage=rdb), INTERRUPTED_REASON)
                     for s in states)
        progress.message(f"interrupted: {failed} running trial(s) marked FAIL; run the same command to resume")
        raise
    finally:
        ray.shutdown()
