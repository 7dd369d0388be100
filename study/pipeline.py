"""The library entry point: run a study from a typed config and get a typed summary back.

config -> `preflight` (resolved once into a `RunSpec`; storage, Ray address, leases and stored settings checked,
read only) -> dataset -> Ray -> leases taken -> one Optuna study per (family, budget) -> Ray Tune -> trials in the
storage -> `StudySummary`. The CLI's `equiscale run` is a thin wrapper around `preflight` and `run_study`; a
notebook calls `run_study(config)` the same way.
"""

from __future__ import annotations

import socket
from dataclasses import replace
from pathlib import Path

import optuna

from study.adapter import start_ray, stop_ray
from study.config import StudyConfig, resolve
from study.errors import EquiscaleError
from study.lease import LeaseKeeper, check_free
from study.progress import Progress
from study.resume import INTERRUPTED_REASON, check_studies, fail_stale_trials, prepare_studies, remaining_trials
from study.spec import ResourceConfig, RunSpec
from study.storage import check_storage, first_line, holds_studies, open_storage
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


def preflight(config: StudyConfig, *, storage: str | None = None) -> RunSpec:
    """The one pre-flight of a run, before its dataset is simulated and before Ray starts, writing nothing: the
    config resolved (plugins loaded, every study checked), the storage URL and Ray address, other drivers' leases,
    and the settings of studies already stored. Returns the resolved run."""
    if storage is not None:
        config = replace(config, storage=storage)
    run = resolve(config)
    check_address(run.resources.address)
    return preflight_run(run)


def run_study(config: StudyConfig | RunSpec, *, storage: str | None = None, progress: Progress | None = None,
              cache_dir: str | Path | None = None) -> StudySummary:
    """Run (or resume) every study of `config` (a StudyConfig, or a RunSpec from `preflight`) until each has its
    target COMPLETE trials.

    The driver holds a lease on its studies in the storage (`study.lease`): a second driver on one of
    them is refused while this one lives. Ctrl-C (KeyboardInterrupt) marks the running trials FAIL and
    shuts Ray down before it propagates; running the same config again resumes.

    `storage` overrides the config's storage; `progress` prints a line per finished trial (default: a progress
    bar and lines, as `equiscale run` prints; `Progress(enabled=False)` for none); `cache_dir` is the dataset
    cache (default `$EQUISCALE_CACHE_DIR` or ~/.cache/equiscale). Everything that can be checked is checked
    before the dataset is loaded, Ray starts or anything is written.
    """
    if isinstance(config, RunSpec):
        run = config if storage is None else replace(config, storage=storage)
        if storage is not None:
            run = preflight_run(run)
    else:
        run = preflight(config, storage=storage)
    progress = progress if progress is not None else Progress(enabled=True, bar=True)
    names = run.names
    progress.message(run.task.describe(run.task_settings))
    dataset = run.task.load(run.task_settings, cache_dir=cache_dir, progress=progress.enabled)
    todo = sum(remaining_trials(run.storage, run).values())
    progress.message(f"{len(names)} studies, {todo} trial(s) to run -> {run.storage}")
    if todo:
        _start_ray(run.resources)  # a cluster that cannot be reached is refused before any study is created
    try:
        if todo:
            _check_fits(run.resources)  # a trial the cluster cannot hold: refused before the first write, not a hang
        rdb = open_storage(run.storage)
        lease = LeaseKeeper(rdb, names)
        lease.acquire()  # atomic; another live driver: refused with nothing written (before stale trials fail)
        try:
            states = prepare_studies(rdb, run, dataset.key)
            if todo:
                states = _run(run, rdb, states, dataset, progress)
        finally:
            lease.release()
    finally:
        if todo:
            stop_ray()
    progress.close()
    return StudySummary(storage=run.storage, rows=tuple(study_rows(rdb)),
                        short=tuple(s.name for s in states if s.remaining))


def preflight_run(run: RunSpec) -> RunSpec:
    """The storage side of the pre-flight (read only): the URL, other drivers' leases, the stored settings."""
    check_storage(run.storage)
    check_free(run.storage, run.names)  # another live driver on one of these studies: refused, read only
    if holds_studies(run.storage):      # a stored study of another setting: refused, read only
        rdb = open_storage(run.storage, read_only=True)
        existing = {s.study_name: s for s in optuna.get_all_study_summaries(rdb, include_best_trial=False)}
        check_studies(existing, run, run.task.dataset_key(run.task_settings))
    return run


def _start_ray(resources: ResourceConfig) -> None:
    try:
        start_ray(resources.address)
    except (OSError, TimeoutError, RuntimeError, ConnectionError) as exc:
        where = f" at {resources.address!r}" if resources.address else ""
        raise EquiscaleError(f"cannot start/connect Ray{where}: {first_line(exc)}") from None


def _check_fits(r: ResourceConfig) -> None:
    """One trial must fit the Ray cluster's CPUs and GPUs, whatever `max_concurrent` says (else Tune waits)."""
    import ray

    resources = ray.cluster_resources()
    cpus, gpus = resources.get("CPU", 0.0), resources.get("GPU", 0.0)
    if r.cpus_per_trial > cpus or r.gpus_per_trial > gpus:
        raise EquiscaleError(f"the Ray cluster ({cpus:g} CPU, {gpus:g} GPU) cannot fit one trial of "
                             f"{r.cpus_per_trial:g} CPU and {r.gpus_per_trial:g} GPU (--cpus-per-trial, "
                             f"--gpus-per-trial)")


def _run(run: RunSpec, rdb, states, dataset, progress: Progress):
    """Run the studies on Ray; an interrupted run fails its RUNNING trials before the interrupt propagates."""
    try:
        return run_studies(run, storage=rdb, states=states, dataset=dataset, progress=progress)
    except KeyboardInterrupt:
        failed = sum(fail_stale_trials(optuna.load_study(study_name=s.name, storage=rdb), INTERRUPTED_REASON)
                     for s in states)
        progress.message(f"interrupted: {failed} running trial(s) marked FAIL; run the same command to resume")
        raise

