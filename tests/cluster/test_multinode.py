"""Multi-node Ray: a real two-node cluster on this machine (`ray start --head` and a second `ray start
--address`), `equiscale run --address` against it: trials run on both nodes and the dataset reaches the
workers through Ray's object store (the workers' own dataset cache stays empty)."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest

from tests.tiny import tiny_toml

pytestmark = pytest.mark.slow
TrialState = optuna.trial.TrialState

TRIALS = 2
# Trials of tens of seconds: long enough that the second node's worker is up before the first node's
# worker is free again (with actor reuse, quick trials could all run on the node that started first).
CONFIG = tiny_toml(budgets=(4e10, 8e10), trials=TRIALS, max_steps=12000)


def test_a_run_against_a_two_node_cluster_uses_both_nodes_and_ships_the_dataset(tmp_path, ray_cluster):
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    (tmp_path / "study.toml").write_text(CONFIG)
    url = f"sqlite:///{tmp_path / 'study.db'}"
    driver_cache = tmp_path / "driver-cache"
    env = dict(ray_cluster.env, EQUISCALE_CACHE_DIR=str(driver_cache))  # not the workers' cache
    equiscale = str(Path(sys.executable).parent / "equiscale")
    started = time.monotonic()
    run = subprocess.run([equiscale, "run", str(tmp_path / "study.toml"), "--address", ray_cluster.address,
                          "--storage", url, "--quiet"], env=env, cwd=tmp_path, capture_output=True, text=True,
                         timeout=480, start_new_session=True)
    assert run.returncode == 0, f"{run.stdout}\n{run.stderr}"
    print(f"run on the cluster: {time.monotonic() - started:.0f} s")

    nodes = {}
    for name in ("transformer/4e+10", "transformer/8e+10"):
        trials = optuna.load_study(study_name=name, storage=url).trials
        assert [t.state for t in trials] == [TrialState.COMPLETE] * TRIALS, name
        for t in trials:
            print(name, t.number, t.user_attrs["node"], t.user_attrs["steps"], f'{t.user_attrs["wall_seconds"]:.1f} s')
            host, _, node = t.user_attrs["node"].partition("/")
            nodes.setdefault(node, []).append(t.number)
            assert host == socket.gethostname() and t.user_attrs["flops_used"] > 0
    # both Ray nodes ran trials (the stored id is the first 12 hex digits of the Ray node id)
    assert set(nodes) == {node_id[:12] for node_id in ray_cluster.node_ids}, nodes
    # the dataset came through the object store: only the driver built and cached it
    assert any(driver_cache.rglob("*")), "the driver did not cache the dataset"
    assert not ray_cluster.worker_cache.exists(), "a worker loaded the dataset itself"
