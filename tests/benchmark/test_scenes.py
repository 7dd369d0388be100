"""Scene sampling and the marker representation, checked against MuJoCo's compiler and calculus."""

import mujoco
import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from study.benchmark.format import PROPS_COLUMNS, SHAPES
from study.benchmark.scenes import (
    Scenes, bounding_radius, markers, principal_inertia, props, sample_scenes,
    placement_radius, scenes_from_markers, volume)
from study.benchmark.simulate import mujoco_size


@pytest.fixture(scope="module")
def scenes():
    return sample_scenes(np.random.default_rng(3), 200, 4)


def test_volume_and_inertia_match_mujoco_compiler(scenes):
    """MuJoCo computes mass and inertia from geom + density on its own; ours must agree."""
    shape, size = scenes.shape.reshape(-1), scenes.size.reshape(-1, 3)
    density = 1000.0
    for kind in range(len(SHAPES)):
        for i in np.flatnonzero(shape == kind)[:5]:
            s = [float(x) for x in mujoco_size(shape[i:i + 1], size[i:i + 1])[0]]
            xml = (f'<mujoco><worldbody><body><freejoint/><geom type="{SHAPES[kind]}" '
                   f'size="{s[0]!r} {s[1]!r} {s[2]!r}" density="{density}"/></body></worldbody></mujoco>')
            model = mujoco.MjModel.from_xml_string(xml)
            mass = density * volume(shape[i], size[i])
            np.testing.assert_allclose(model.body_mass[1], mass, rtol=1e-9)
            ours = principal_inertia(shape[i], size[i], mass)
            # MuJoCo may order the principal axes differently only when it rotates the frame
            np.testing.assert_allclose(model.body_iquat[1], [1, 0, 0, 0], atol=1e-12)
            np.testing.assert_allclose(model.body_inertia[1], ours, rtol=1e-9)


def test_sampled_scenes_are_valid(scenes):
    S, K = scenes.shape.shape
    assert np.allclose(np.linalg.det(scenes.rot), 1) and np.allclose(
        scenes.rot @ np.swapaxes(scenes.rot, -1, -2), np.eye(3))
    assert (np.linalg.norm(scenes.pos, axis=-1) <= placement_radius(K)).all()
    rb = bounding_radius(scenes.shape, scenes.size)
    gap = np.linalg.norm(scenes.pos[:, :, None] - scenes.pos[:, None], axis=-1)
    apart = gap > rb[:, :, None] + rb[:, None]
    assert apart[:, ~np.eye(K, dtype=bool)].all()
    # velocities point roughly at the centre
    assert (np.sum(scenes.vel * -scenes.pos, axis=-1) > 0).mean() > 0.9
    sphere = scenes.shape == 1
    assert np.allclose(scenes.size[sphere], scenes.size[sphere][:, :1])
    assert set(np.unique(scenes.shape)) == set(range(len(SHAPES)))


def test_props_columns(scenes):
    p = props(scenes)
    assert p.shape[-1] == len(PROPS_COLUMNS)
    np.testing.assert_array_equal(p[..., 0], scenes.mass)
    np.testing.assert_array_equal(p[..., 1:4], scenes.size)
    np.testing.assert_array_equal(p[..., 4:].argmax(-1), scenes.shape)
    assert (p[..., 4:].sum(-1) == 1).all()


def test_markers_round_trip(scenes):
    recovered = scenes_from_markers(*markers(scenes), props(scenes))
    for name in Scenes.__dataclass_fields__:
        np.testing.assert_allclose(getattr(recovered, name), getattr(scenes, name), atol=1e-12, err_msg=name)


def test_marker_velocities_are_time_derivatives(scenes):
    """Finite difference of the markers of the rigidly moved body against `markers`' velocities."""
    eps = 1e-6
    spin = Rotation.from_rotvec((scenes.omega * eps).reshape(-1, 3)).as_matrix().reshape(scenes.rot.shape)
    later = Scenes(scenes.shape, scenes.size, scenes.mass, scenes.pos + eps * scenes.vel,
                   spin @ scenes.rot, scenes.vel, scenes.omega)
    pos0, vel0 = markers(scenes)
    np.testing.assert_allclose((markers(later)[0] - pos0) / eps, vel0, atol=1e-5)


def test_markers_are_centre_plus_scaled_axes(scenes):
    pos0, _ = markers(scenes)
    np.testing.assert_array_equal(pos0[:, :, 0], scenes.pos)
    for i in range(3):
        np.testing.assert_allclose(pos0[:, :, 1 + i] - scenes.pos,
                                   scenes.rot[..., :, i] * scenes.size[..., i:i + 1], atol=1e-15)


def test_same_rng_same_scenes():
    a = sample_scenes(np.random.default_rng(7), 10, 3)
    b = sample_scenes(np.random.default_rng(7), 10, 3)
    for name in Scenes.__dataclass_fields__:
        assert np.array_equal(getattr(a, name), getattr(b, name))


@pytest.mark.parametrize("bodies", [1, 2, 16, 64])
def test_any_body_count_can_be_placed(bodies):
    scenes = sample_scenes(np.random.default_rng(0), 8, bodies)
    rb = bounding_radius(scenes.shape, scenes.size)
    gap = np.linalg.norm(scenes.pos[:, :, None] - scenes.pos[:, None], axis=-1)
    assert (gap > rb[:, :, None] + rb[:, None])[:, ~np.eye(bodies, dtype=bool)].all()
    assert (np.linalg.norm(scenes.pos, axis=-1) <= placement_radius(bodies)).all()
