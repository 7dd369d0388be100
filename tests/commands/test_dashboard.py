"""`equiscale dashboard` serves optuna-dashboard on the storage: its HTTP API lists our studies."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.request

import optuna
import pytest

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_dashboard_serves_the_studies_over_http(tmp_path):
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    url = f"sqlite:///{tmp_path / 's.db'}"
    names = {"gatr/1e+10", "transformer-aug/2e+10"}
    for name in names:
        study = optuna.create_study(storage=url, study_name=name)
        study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=2)
    port = _free_port()
    server = subprocess.Popen([sys.executable, "-m", "study.cli", "dashboard", "--storage", url,
                               "--host", "127.0.0.1", "--port", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline, body = time.monotonic() + 60, None
        while time.monotonic() < deadline and server.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/studies", timeout=2) as response:
                    body = json.load(response)
                break
            except OSError:
                time.sleep(0.2)
        assert body is not None, server.stderr.read().decode() if server.poll() is not None else "no answer"
        served = {study["study_name"]: study for study in body["study_summaries"]}
        assert set(served) == names
    finally:
        server.terminate()
        server.wait(timeout=10)
