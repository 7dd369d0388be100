"""Fixtures for runs as on a cluster: a private PostgreSQL server (session) and a private two-node Ray cluster.

Helpers and the rules they follow (only processes these fixtures started are ever killed; under CI a
server that cannot be started fails the tests) are in `tests/cluster/support.py`.
"""

from __future__ import annotations

import secrets
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from tests.cluster.support import (
    MARK, Driver, RayCluster, alive_nodes, ray_start, free_port, kill_marked, marked_env, private_dir, start_postgres,
    stop_postgres, unavailable,
)


@pytest.fixture(scope="session")
def postgres_server():
    """A private PostgreSQL server on 127.0.0.1 for the test session; stopped and removed at the end."""
    try:
        from sqlalchemy import create_engine

        create_engine("postgresql://u@127.0.0.1:1/db")  # imports the driver SQLAlchemy uses for postgresql://
    except ImportError as exc:
        unavailable(f"no PostgreSQL driver for SQLAlchemy ({exc}): pip install -e '.[test]'")
    root = Path(private_dir("eqpg"))
    try:
        server = start_postgres(root)
    except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
        stop_postgres(root)
        shutil.rmtree(root, ignore_errors=True)
        unavailable(f"cannot start a PostgreSQL server: {exc}")
    try:
        yield server
    finally:
        stop_postgres(root)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def postgres_url(postgres_server) -> str:
    """A fresh, empty database on the session's server: `postgresql://equiscale@127.0.0.1:PORT/t_xxxx`."""
    return postgres_server.create_database()


# -------------------------------------------------------------------------------------------------- Ray

@pytest.fixture
def drivers():
    """`drivers(config, url, cache)` -> a `Driver` (not started); every one made is killed and removed at the end."""
    made: list[Driver] = []

    def make(config: Path, url: str, cache: Path) -> Driver:
        made.append(Driver(config, url, cache))
        return made[-1]

    yield make
    for driver in made:
        driver.cleanup()


@pytest.fixture
def ray_tmpdir(monkeypatch):
    """A private Ray temp dir for drivers started by this test (RAY_TMPDIR); their Ray processes (found by
    RAY_TMPDIR or the marker in their environment) are killed at the end, and the directory removed."""
    path = private_dir("eqr")
    monkeypatch.setenv("RAY_TMPDIR", path)
    monkeypatch.setenv(MARK, path)
    yield path
    kill_marked(path)  # the Ray processes of those drivers: RAY_TMPDIR on their command line, marker in env
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def ray_cluster(tmp_path):
    """A head and a second node (1 CPU each) joined on this machine, each with its own temp dir.

    Ray 2.60 resolves `--node-ip-address=127.0.0.1` to the host's address and listens on all interfaces;
    clients connect through 127.0.0.1:PORT. Token authentication is on, with a token of this cluster only
    (RAY_AUTH_MODE=token and RAY_AUTH_TOKEN in `env`: clients need both). The workers' dataset cache
    (EQUISCALE_CACHE_DIR of the nodes) is `worker_cache`, which no one creates: a dataset a worker needs
    must come through Ray's object store.
    """
    root = Path(private_dir("eqc"))
    worker_cache = tmp_path / "worker-cache"
    env = marked_env(str(root), RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=secrets.token_hex(32),
                     RAY_USAGE_STATS_ENABLED="0", EQUISCALE_CACHE_DIR=str(worker_cache))
    env.pop("RAY_TMPDIR", None)
    env.pop("RAY_ADDRESS", None)

    def common() -> list[str]:  # ports of their own for each node (two raylets share this host)
        return ["--num-cpus=1", "--node-ip-address=127.0.0.1", "--disable-usage-stats",
                f"--dashboard-agent-listen-port={free_port()}", f"--metrics-export-port={free_port()}",
                f"--runtime-env-agent-port={free_port()}"]

    try:
        port = free_port()
        ray_start(["--head", f"--port={port}", f"--temp-dir={root / 'h'}", "--include-dashboard=false",
                   f"--dashboard-port={free_port()}", *common()],
                  env, root / "head.log", timeout=120)
        address = f"127.0.0.1:{port}"
        ray_start([f"--address={address}", f"--temp-dir={root / 'w'}", *common()], env, root / "node.log",
                  timeout=120)
        deadline = time.monotonic() + 60
        nodes = []
        while time.monotonic() < deadline:
            nodes = alive_nodes(address, env, timeout=60)
            if len(nodes) == 2:
                break
            time.sleep(1)
        if len(nodes) != 2:
            raise RuntimeError(f"the second node did not join: alive nodes {nodes}")
    except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
        kill_marked(str(root))
        shutil.rmtree(root, ignore_errors=True)
        unavailable(f"cannot start a two-node Ray cluster: {exc}")
    try:
        yield RayCluster(address=address, root=root, env=env, node_ids=[n["id"] for n in nodes],
                         worker_cache=worker_cache)
    finally:
        kill_marked(str(root))  # exactly this cluster's processes (marker in environment or temp dir in argv)
        shutil.rmtree(root, ignore_errors=True)
