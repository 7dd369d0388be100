"""The simulator is E(3)-equivariant: simulate(g·x) = g·simulate(x) for rotations, reflections, shifts."""

import numpy as np
import pytest

from study.benchmark.config import BenchmarkConfig
from study.benchmark.symmetry import equivariance_errors

SCENES = 256


@pytest.fixture(scope="module")
def errors():
    return equivariance_errors(BenchmarkConfig(), scenes=SCENES, seed=1, threads=2)


def test_relative_error_below_1e_3_on_95_percent(errors):
    err = errors["error"]
    assert err.shape == (SCENES,) and np.isfinite(err).all()
    assert (err <= 1e-3).mean() >= 0.95, np.percentile(err, [50, 95, 100])


def test_reflections_are_covered(errors):
    reflected = errors["reflected"]
    assert 0.3 < reflected.mean() < 0.7
    assert (errors["error"][reflected] <= 1e-3).mean() >= 0.95


def test_only_reflections_and_only_rotations():
    """Pure reflections (det -1 for all) and pure rotations, each on its own."""
    for prob in (0.0, 1.0):
        out = equivariance_errors(BenchmarkConfig(), scenes=64, seed=2, reflection_prob=prob)
        assert out["reflected"].all() == bool(prob) and out["reflected"].any() == bool(prob)
        assert (out["error"] <= 1e-3).mean() >= 0.95


def test_the_check_can_fail(monkeypatch):
    """Dropping the axis flip for reflected frames must show up as large errors."""
    from study.benchmark import simulate

    original = simulate.Simulator.run

    def no_flip(self, scenes):
        proper = scenes.rot * np.where(np.linalg.det(scenes.rot) < 0, -1.0, 1.0)[..., None, None]
        fixed = type(scenes)(scenes.shape, scenes.size, scenes.mass, scenes.pos, proper, scenes.vel,
                             scenes.omega)  # wrongly negates the whole frame: bodies are point-reflected
        return original(self, fixed)

    monkeypatch.setattr(simulate.Simulator, "run", no_flip)
    out = equivariance_errors(BenchmarkConfig(), scenes=32, seed=3, reflection_prob=1.0)
    assert (out["error"] > 1e-2).mean() > 0.9
