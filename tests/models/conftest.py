"""Realistic small batches for model tests: the benchmark loader when it is there, else synthetic
scenes built like the benchmark's (centre of mass plus principal axes scaled by half-extents)."""

from __future__ import annotations

import pytest
import torch

from study.benchmark.format import MARKERS, PROPS


def synthetic_batch(scenes: int, bodies: int = 4, *, seed: int = 0, dtype=torch.float64):
    """pos0, vel0, props like the benchmark's: rigid frames with right-handed principal axes."""
    g = torch.Generator().manual_seed(seed)
    centre = torch.randn(scenes, bodies, 1, 3, generator=g, dtype=torch.float64)
    q, r = torch.linalg.qr(torch.randn(scenes, bodies, 3, 3, generator=g, dtype=torch.float64))
    q = q * torch.sign(torch.linalg.det(q))[..., None, None]             # proper rotations
    half = 0.05 + 0.3 * torch.rand(scenes, bodies, 3, generator=g, dtype=torch.float64)
    axes = (q * half[..., None, :]).transpose(-1, -2)                     # rows: scaled axes
    pos0 = torch.cat([centre, centre + axes], dim=2)[:, :, :MARKERS]      # (S, K, M, 3)
    lin = -0.5 * centre + 0.3 * torch.randn(scenes, bodies, 1, 3, generator=g, dtype=torch.float64)
    omega = torch.randn(scenes, bodies, 1, 3, generator=g, dtype=torch.float64)
    vel0 = lin + torch.linalg.cross(omega.expand_as(pos0), pos0 - centre)  # rigid velocity field
    props = torch.zeros(scenes, bodies, PROPS, dtype=torch.float64)
    props[..., 0] = 1.0 + torch.rand(scenes, bodies, generator=g, dtype=torch.float64)
    props[..., 1:4] = half
    kind = torch.randint(0, 4, (scenes, bodies), generator=g)
    props[..., 4:8] = torch.nn.functional.one_hot(kind, 4).to(torch.float64)
    return pos0.to(dtype), vel0.to(dtype), props.to(dtype)


def _real_batch(scenes: int, dtype):
    try:
        from study.benchmark import load_dataset
    except ImportError:
        return None
    import tempfile

    try:
        with tempfile.TemporaryDirectory() as tmp:
            data = load_dataset(scenes=scenes, bodies=4, seed=0, cache_dir=tmp)
    except Exception:  # loader not ready or differently shaped: fall back to synthetic scenes
        return None
    split = data.train[: min(len(data.train), 8)]
    return split.pos0.to(dtype), split.vel0.to(dtype), split.props.to(dtype)


@pytest.fixture(scope="session")
def batch64():
    """A small float64 batch (B, 4 bodies, M markers): real benchmark scenes if available."""
    real = _real_batch(16, torch.float64)
    return real if real is not None else synthetic_batch(8, seed=1)


@pytest.fixture(scope="session")
def batch32(batch64):
    return tuple(x.to(torch.float32) for x in batch64)
