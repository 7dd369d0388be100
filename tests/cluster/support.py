"""Helpers for runs as on a cluster: a private PostgreSQL server and a private two-node Ray cluster, both on
this machine, both started for the tests and stopped (with everything they started) afterwards.

Nothing here touches processes it did not start: every process of a fixture carries a marker in its
environment (`EQUISCALE_TEST_MARK=<its private directory>`) or its private directory in its command line,
and cleanup kills exactly those. No global `ray stop`, no `pg_ctlcluster`.

Under CI (the environment variable CI is set, as `.ci/run` does) a server that cannot be started FAILS the
tests that need it; elsewhere they are skipped with the reason.
"""

from __future__ import annotations

import glob
import os
import pwd
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

MARK = "EQUISCALE_TEST_MARK"


# ----------------------------------------------------------------------------------------------- helpers

def unavailable(reason: str):
    """Fail under CI (a CI run must exercise these tests), skip elsewhere."""
    if os.environ.get("CI"):
        pytest.fail(f"CI: {reason}", pytrace=False)
    pytest.skip(reason)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def private_dir(prefix: str) -> str:
    """A short directory under /tmp (AF_UNIX socket paths below it must stay under 108 bytes)."""
    return tempfile.mkdtemp(prefix=prefix, dir="/tmp")


def marked_processes(marker: str) -> list[int]:
    """PIDs (other than this one) whose environment has `MARK=marker` or whose command line names the path
    `marker` (followed by `/`, a space or the argument's end: never a longer name that starts alike)."""
    needle_env = f"\0{MARK}={marker}\0".encode()
    needle_cmd = re.compile(re.escape(marker.encode()) + rb"(?:/|\s|\0)")
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environ = b"\0" + (entry / "environ").read_bytes() + b"\0"
            cmdline = (entry / "cmdline").read_bytes() + b"\0"
        except OSError:
            continue
        if needle_env in environ or needle_cmd.search(cmdline):
            pids.append(int(entry.name))
    return pids


def kill_marked(marker: str, *, grace: float = 5.0) -> list[int]:
    """SIGTERM the processes of `marker`, SIGKILL what is left after `grace` s; returns the PIDs signalled."""
    pids = marked_processes(marker)
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        for pid in marked_processes(marker):
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + wait
        while marked_processes(marker) and time.monotonic() < deadline:
            time.sleep(0.1)
    return pids


def marked_env(marker: str, **extra: str) -> dict[str, str]:
    """This process's environment plus the marker (inherited by every child) and `extra`."""
    return dict(os.environ, **{MARK: marker}, **extra)


# -------------------------------------------------------------------------------------------- PostgreSQL

def postgres_bin() -> Path | None:
    """The directory of the newest installed PostgreSQL server binaries (Debian layout, else the PATH)."""
    found = glob.glob("/usr/lib/postgresql/*/bin/initdb") + glob.glob("/usr/pgsql-*/bin/initdb")
    if found:
        def version(path: str) -> tuple:
            return tuple(int(x) for x in re.findall(r"\d+", path))
        return Path(max(found, key=version)).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def _server_user() -> pwd.struct_passwd | None:
    """The unprivileged user to run the server as when this process is root (initdb refuses root)."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    raise RuntimeError("running as root and neither a 'postgres' nor a 'nobody' user exists")


@dataclass
class PostgresServer:
    """A private server: `url(db)` for a database on it, `create_database()` for a fresh one."""

    port: int
    root: Path
    user: str = "equiscale"
    databases: list[str] = field(default_factory=list)

    def url(self, database: str) -> str:
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str | None = None) -> str:
        """CREATE DATABASE through SQLAlchemy, with whichever driver it picks for postgresql:// (psycopg 3
        for SQLAlchemy 2.1, psycopg2 before): the same path a storage URL takes."""
        from sqlalchemy import create_engine, text
        from sqlalchemy.pool import NullPool

        name = name or f"t_{secrets.token_hex(4)}"
        engine = create_engine(self.url("postgres"), isolation_level="AUTOCOMMIT", poolclass=NullPool)
        try:
            with engine.connect() as connection:
                connection.execute(text(f'CREATE DATABASE "{name}"'))
        finally:
            engine.dispose()
        self.databases.append(name)
        return self.url(name)


def _run_as(user, argv: list[str], *, cwd: Path, timeout: float) -> subprocess.CompletedProcess:
    kwargs = {}
    if user is not None:
        kwargs = dict(user=user.pw_uid, group=user.pw_gid, extra_groups=[])
    env = dict(os.environ, LC_ALL="C", LANG="C", HOME=str(cwd))
    return subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, **kwargs)


def start_postgres(root: Path, *, timeout: float = 120.0) -> PostgresServer:
    """initdb into `root/data`, start on a free loopback port (sockets in `root`), wait until it accepts."""
    bindir = postgres_bin()
    if bindir is None:
        raise RuntimeError("no PostgreSQL server binaries (initdb) found: install the 'postgresql' package")
    user = _server_user()
    if user is not None:
        os.chown(root, user.pw_uid, user.pw_gid)
    data = root / "data"
    started = time.monotonic()
    init = _run_as(user, [str(bindir / "initdb"), "-D", str(data), "-U", "equiscale", "--auth=trust",
                          "--encoding=UTF8", "--no-sync", "--no-instructions"], cwd=root, timeout=timeout)
    if init.returncode != 0:
        raise RuntimeError(f"initdb failed ({init.returncode}): {(init.stderr or init.stdout).strip()[-500:]}")
    last = ""
    for _attempt in range(3):  # a port taken between choosing and binding: choose again
        port = free_port()
        options = (f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off "
                   f"-c full_page_writes=off -c max_connections=200")
        left = max(10, int(timeout - (time.monotonic() - started)))
        start = _run_as(user, [str(bindir / "pg_ctl"), "-D", str(data), "-l", str(root / "server.log"), "-w",
                               "-t", str(left), "-o", options, "start"], cwd=root, timeout=left + 10)
        if start.returncode == 0:
            return PostgresServer(port=port, root=root)
        log = (root / "server.log").read_text(errors="replace") if (root / "server.log").exists() else ""
        last = f"pg_ctl start failed ({start.returncode}): {(start.stderr or start.stdout).strip()[-300:]} " \
               f"{log.strip()[-500:]}"
        stop_postgres(root)
    raise RuntimeError(last)


def stop_postgres(root: Path) -> None:
    """Stop the server of `root` (fast), then kill anything of it still there (by its data directory)."""
    bindir = postgres_bin()
    data = root / "data"
    if bindir is not None and (data / "postmaster.pid").exists():
        try:
            _run_as(_server_user(), [str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "-t", "30",
                                     "stop"], cwd=root, timeout=40)
        except (subprocess.TimeoutExpired, OSError):
            pass
    pid_file = data / "postmaster.pid"
    if pid_file.exists():
        try:
            os.kill(int(pid_file.read_text().split()[0]), signal.SIGKILL)
        except (ValueError, IndexError, ProcessLookupError, PermissionError):
            pass
    kill_marked(str(data), grace=2.0)  # the postmaster names its data directory (-D) on its command line


@dataclass
class RayCluster:
    """A private local cluster: `address` (127.0.0.1:PORT), `env` for clients (token, marker), node ids."""

    address: str
    root: Path
    env: dict[str, str]
    node_ids: list[str]
    worker_cache: Path


def ray_start(args: list[str], env: dict[str, str], log: Path, timeout: float) -> None:
    ray = Path(sys.executable).parent / "ray"
    with open(log, "ab") as out:
        # a new session: `ray start` daemonises its processes; they keep the marker in their environment
        done = subprocess.run([str(ray), "start", *args], env=env, stdout=out, stderr=subprocess.STDOUT,
                              timeout=timeout, start_new_session=True)
    if done.returncode != 0:
        raise RuntimeError(f"ray start {' '.join(args[:2])} failed ({done.returncode}): "
                           f"{log.read_text(errors='replace').strip()[-800:]}")


def alive_nodes(address: str, env: dict[str, str], timeout: float) -> list[dict]:
    """The cluster's alive nodes, asked from a short-lived client process (this process stays Ray-free)."""
    code = ("import json, ray; ray.init(address=%r, log_to_driver=False, logging_level='ERROR'); "
            "print(json.dumps([{'id': n['NodeID'], 'ip': n['NodeManagerAddress'], 'cpu': n['Resources'].get('CPU')}"
            " for n in ray.nodes() if n['Alive']]))" % address)
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise RuntimeError(f"cannot list the cluster's nodes: {done.stderr.strip()[-800:]}")
    import json

    return json.loads(done.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------------------------------------- drivers

class Driver:
    """`python -m study.cli run CONFIG --storage URL --quiet` in its own process group, with its own RAY_TMPDIR
    (and the marker: its Ray processes are found and killed by it, nothing else)."""

    def __init__(self, config: Path, url: str, cache: Path):
        self.ray_tmp = private_dir("eqr")
        self.env = marked_env(self.ray_tmp, RAY_TMPDIR=self.ray_tmp, EQUISCALE_CACHE_DIR=str(cache))
        self.command = [sys.executable, "-m", "study.cli", "run", str(config), "--storage", url, "--quiet"]
        self.cwd = config.parent
        self.process: subprocess.Popen | None = None

    def start(self) -> Driver:
        self.process = subprocess.Popen(self.command, env=self.env, cwd=self.cwd, start_new_session=True,
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        return self

    def run(self, timeout: float = 420) -> subprocess.CompletedProcess:
        return subprocess.run(self.command, env=self.env, cwd=self.cwd, capture_output=True, text=True,
                              timeout=timeout, start_new_session=True)

    def wait(self, timeout: float = 420) -> tuple[int, str, str]:
        out, err = self.process.communicate(timeout=timeout)
        return self.process.returncode, out, err

    def kill(self) -> None:
        """SIGKILL the driver's process group, then any Ray process it left (by its private RAY_TMPDIR)."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        kill_marked(self.ray_tmp, grace=0.0)

    def cleanup(self) -> None:
        self.kill()
        shutil.rmtree(self.ray_tmp, ignore_errors=True)
