"""Realistic small batches for model tests: a few scenes simulated by the benchmark itself."""

import tempfile

import pytest
import torch

from study.benchmark import load_dataset


@pytest.fixture(scope="session")
def batch64():
    """A small float64 batch of 8 benchmark scenes (B, 4 bodies, M markers)."""
    with tempfile.TemporaryDirectory() as tmp:
        data = load_dataset(scenes=16, bodies=4, seed=0, cache_dir=tmp)
    split = data.train[:8]
    return split.pos0.double(), split.vel0.double(), split.props.double()


@pytest.fixture(scope="session")
def batch32(batch64):
    """`batch64` in float32."""
    return tuple(x.to(torch.float32) for x in batch64)
