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

from study.adapter import start_ray, stop_ray
from study.benchmark import load_dataset
from study.config import StudyConfig, validate
from study.errors import EquiscaleError
from study.estimate import completed
from study.lease import LeaseKeeper, check_free
from study.progress import Progress
from study.resume import INTERRUPTED_REASON, fail_stale_trials, prepare_studies
from study.storage import check_storage, first_line, open_storage
from study.summary import StudySummary, study_rows
from study.tune import run_studies

HTTP2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + bytes([0, 0, 0, 4, 0, 0, 0, 0, 0])  # + empty SETTINGS


def check_address(address: str | None, *, timeout: float = 3.0) -> None:
    """One-line error when a Ray address (host:port, optionally ray://) does not answer like Ray.

    Ray's GCS (and Ray Client) are gRPC servers: they answer an HTTP/2 preface with a SETTINGS frame.
    Anything else listening there (or nothing) is refused in seconds, where `ray.init` would retry for
    minutes."""
    if not address or address in ("auto", "local"):
        return
    hostport = address.split("://", 1)[-1]
    host, _, port = hostport.rpartition(":")
    if not host or not port.isdigit():
        raise EquiscaleError(f"malformed Ray address {address!r} (expected HOST:PORT)")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout) as connection:
            connection.settimeout(timeout)
            connection.sendall(HTTP2_PREFACE)
            reply = connection.recv(9)
    except OSError as exc:
        raise EquiscaleError(f"Ray address {address!r} unreachable: {exc.strerror or exc}") from None
    if len(reply) < 9 or reply[3] != 4:
        raise EquiscaleError(f"Ray address {address!r} does not answer like a Ray cluster (no gRPC server there)")


def run_study(config: StudyConfig, *, storage: str | None = None, progress: Progress | None = None,
              cache_dir: str | Path | None = None) -> StudySummary:
    """Run (or resume) every (family, budget) study (data studies: (family, training-set size)) of `config` until each has its target COMPLETE trials.

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
    names = [spec.name for spec in config.specs()]
    lease = LeaseKeeper(rdb, names)
    check_free(rdb, names, lease.owner)  # another live driver on one of these studies: refused, nothing written
    d = config.data
    progress.message(f"dataset: {d.scenes} scenes of {d.bodies} bodies (seed {d.seed})")
    dataset = load_dataset(d.benchmark(), cache_dir=cache_dir, progress=progress.enabled)
    done = completed(config.storage, names, grid=config.counts_points)
    todo = sum(max(0, config.trials - done.get(name, 0)) for name in names)
    progress.message(f"{len(names)} studies, {todo} trial(s) to run -> {config.storage}")
    if todo:
        _start_ray(config)  # a cluster that cannot be reached is refused before any study is created or changed
    try:
        states = prepare_studies(rdb, config, dataset.key)
        lease.acquire()
        try:
            if todo:
                states = _run(config, rdb, states, dataset, progress)
        finally:
            lease.release()
    finally:
        if todo:
            stop_ray()
    return StudySummary(storage=config.storage, rows=tuple(study_rows(rdb)),
                        short=tuple(s.name for s in states if s.remaining))


def _start_ray(config: StudyConfig) -> None:
    try:
        start_ray(config.resources.address)
    except (OSError, TimeoutError, RuntimeError, ConnectionError) as exc:
        where = f" at {config.resources.address!r}" if config.resources.address else ""
        raise EquiscaleError(f"cannot start/connect Ray{where}: {first_line(exc)}") from None


def _run(config: StudyConfig, rdb, states, dataset, progress: Progress):
    """Run the studies on Ray; an interrupted run fails its RUNNING trials before the interrupt propagates."""
    try:
        return run_studies(config, storage=rdb, states=states, dataset=dataset, progress=progress)
    except KeyboardInterrupt:
        failed = sum(fail_stale_trials(optuna.load_study(study_name=s.name, storage=rdb), INTERRUPTED_REASON)
                     for s in states)
        progress.message(f"interrupted: {failed} running trial(s) marked FAIL; run the same command to resume")
        raise

