"""Fixtures shared by the test packages."""

from __future__ import annotations

import shutil
import tempfile

import pytest


@pytest.fixture
def ray_tmpdir(monkeypatch):
    """A private, short Ray temp dir (AF_UNIX socket paths must stay under 108 bytes)."""
    path = tempfile.mkdtemp(prefix="eqr", dir="/tmp")
    monkeypatch.setenv("RAY_TMPDIR", path)
    yield path
    shutil.rmtree(path, ignore_errors=True)
