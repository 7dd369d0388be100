"""Generation is a pure function of the settings: same seed, same bytes, any thread count."""

import numpy as np
import pytest

from study.benchmark.config import BenchmarkConfig
from study.benchmark.format import ARRAYS, MARKERS, PROPS
from study.benchmark.generate import BLOCK, generate
from study.benchmark.scenes import scenes_from_markers


@pytest.fixture(scope="module")
def small():
    return BenchmarkConfig(scenes=BLOCK + 40, bodies=3, seed=4, horizon=0.2)


def test_same_settings_same_bytes_any_threads(small):
    a = generate(small, threads=1)
    b = generate(small, threads=2)
    for name in ARRAYS:
        assert a.arrays[name].tobytes() == b.arrays[name].tobytes(), name
    assert np.array_equal(a.contact, b.contact)


def test_shapes_dtypes_and_prefix_property(small):
    full = generate(small)
    S, K = small.scenes, small.bodies
    assert full.arrays["pos0"].shape == (S, K, MARKERS, 3) and full.arrays["props"].shape == (S, K, PROPS)
    assert all(a.dtype == np.float32 for a in full.arrays.values())
    short = generate(small.replace(scenes=50))
    for name in ARRAYS:
        assert np.array_equal(short.arrays[name], full.arrays[name][:50])


def test_different_seed_different_scenes(small):
    a, b = generate(small.replace(scenes=20)), generate(small.replace(scenes=20, seed=5))
    assert not np.array_equal(a.arrays["pos0"], b.arrays["pos0"])


def test_stats_match_arrays(small):
    out = generate(small)
    disp = np.linalg.norm(out.arrays["posT"].astype(np.float64) - out.arrays["pos0"], axis=-1).mean()
    assert out.stats["mean_displacement"] == pytest.approx(disp)
    assert out.stats["contact_fraction"] == pytest.approx(out.contact.mean())
    assert out.stats["scenes"] == small.scenes


def test_public_arrays_describe_rigid_bodies(small):
    """Float32 markers still carry a rigid frame: the rebuilt frames are orthonormal to float precision."""
    out = generate(small.replace(scenes=64))
    rebuilt = scenes_from_markers(out.arrays["pos0"], out.arrays["vel0"], out.arrays["props"])
    axes = (out.arrays["pos0"][:, :, 1:] - out.arrays["pos0"][:, :, :1]).astype(np.float64)
    axes /= out.arrays["props"][:, :, 1:4, None]
    np.testing.assert_allclose(axes @ np.swapaxes(axes, -1, -2), np.broadcast_to(np.eye(3), axes.shape), atol=1e-5)
    np.testing.assert_allclose(np.linalg.det(rebuilt.rot), 1, atol=1e-5)
    # at the horizon too
    axesT = (out.arrays["posT"][:, :, 1:] - out.arrays["posT"][:, :, :1]).astype(np.float64)
    axesT /= out.arrays["props"][:, :, 1:4, None]
    np.testing.assert_allclose(axesT @ np.swapaxes(axesT, -1, -2), np.broadcast_to(np.eye(3), axesT.shape), atol=1e-5)


def test_default_settings_give_contacts_in_most_scenes():
    out = generate(BenchmarkConfig(scenes=512))
    assert out.stats["contact_fraction"] >= 0.8
