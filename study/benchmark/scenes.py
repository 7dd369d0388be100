"""Random rigid-body scenes (shapes, masses, poses, velocities) and their marker representation.

Everything here is plain float64 numpy, vectorised over scenes; MuJoCo is only met in `simulate.py`.
A body's frame `rot` holds its principal axes as columns. Sampled scenes have proper rotations
(det +1); a reflected scene has det -1 frames, which is still a valid body because every primitive
is symmetric under flipping one of its axes (`simulate.py` re-expresses it as a proper rotation).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial.transform import Rotation

from study.benchmark.format import MARKERS, PROPS, SHAPES

BOX, SPHERE, ELLIPSOID, CAPSULE = range(len(SHAPES))

# Sampling ranges (metres, kg/m^3, seconds, rad/s); part of the cache key through FORMAT_VERSION.
HALF_EXTENT = (0.05, 0.2)        # box half-extents, sphere and ellipsoid radii
CAPSULE_RADIUS = (0.04, 0.12)
CAPSULE_HALF_LENGTH = (0.05, 0.2)
DENSITY = (500.0, 2000.0)
PLACEMENT_RADIUS = 0.8           # centres uniform in a ball of this radius (for K <= 4 bodies; the
                                 # ball grows as K^(1/3) beyond), bounding spheres apart
AIM_SPREAD = 0.1                 # std of the aim point around the scene centre
ARRIVAL_TIME = (0.15, 0.35)      # speed = distance to the aim point / arrival time
MAX_SPIN = 2 * np.pi             # |omega| uniform in [0, MAX_SPIN]


@dataclass(frozen=True)
class Scenes:
    """S scenes of K bodies. Shapes: shape (S, K) int, size/pos/vel/omega (S, K, 3), mass (S, K),
    rot (S, K, 3, 3) with principal axes as columns; omega is the world-frame angular velocity."""

    shape: np.ndarray
    size: np.ndarray   # half-extent along each principal axis (sphere r,r,r; capsule r,r,h+r)
    mass: np.ndarray
    pos: np.ndarray
    rot: np.ndarray
    vel: np.ndarray
    omega: np.ndarray

    def __len__(self) -> int:
        return self.shape.shape[0]


def volume(shape: np.ndarray, size: np.ndarray) -> np.ndarray:
    """Volume of each primitive (...,) from its shape id (...,) and half-extents (..., 3)."""
    a, b, c = size[..., 0], size[..., 1], size[..., 2]
    r, h = size[..., 0], size[..., 2] - size[..., 0]  # capsule radius and half-length
    return np.select(
        [shape == BOX, shape == SPHERE, shape == ELLIPSOID, shape == CAPSULE],
        [8 * a * b * c, 4 / 3 * np.pi * a**3, 4 / 3 * np.pi * a * b * c,
         np.pi * r**2 * 2 * h + 4 / 3 * np.pi * r**3],
    )


def principal_inertia(shape: np.ndarray, size: np.ndarray, mass: np.ndarray) -> np.ndarray:
    """Principal moments (..., 3) of uniform-density primitives about their centre of mass."""
    sq = size**2                                                    # (..., 3)
    m = mass[..., None]
    box = m / 3 * (sq.sum(-1, keepdims=True) - sq)                  # m/12 (full width^2 + ...)
    ellipsoid = m / 5 * (sq.sum(-1, keepdims=True) - sq)            # also the sphere
    r, h = size[..., 0], size[..., 2] - size[..., 0]
    v_cyl, v_sph = np.pi * r**2 * 2 * h, 4 / 3 * np.pi * r**3
    m_cyl = mass * v_cyl / (v_cyl + v_sph)
    m_sph = mass - m_cyl                                            # both hemispheres
    axial = m_cyl * r**2 / 2 + m_sph * 2 / 5 * r**2
    transverse = m_cyl * (r**2 / 4 + h**2 / 3) + m_sph * (2 / 5 * r**2 + h**2 + 3 / 4 * h * r)
    capsule = np.stack([transverse, transverse, axial], axis=-1)
    s = shape[..., None]
    return np.where(s == BOX, box, np.where(s == CAPSULE, capsule, ellipsoid))


def bounding_radius(shape: np.ndarray, size: np.ndarray) -> np.ndarray:
    """Radius (...,) of a sphere around the centre that contains the primitive."""
    return np.where(shape == BOX, np.linalg.norm(size, axis=-1), size.max(axis=-1))


def sample_scenes(rng: np.random.Generator, scenes: int, bodies: int) -> Scenes:
    """Draw `scenes` independent scenes of `bodies` bodies aimed at each other (see module ranges)."""
    S, K = scenes, bodies
    shape = rng.integers(0, len(SHAPES), size=(S, K))
    extents = rng.uniform(*HALF_EXTENT, size=(S, K, 3))
    radius = rng.uniform(*CAPSULE_RADIUS, size=(S, K))
    half_length = rng.uniform(*CAPSULE_HALF_LENGTH, size=(S, K))
    size = extents.copy()
    size[shape == SPHERE] = extents[shape == SPHERE][:, :1]
    capsule = np.stack([radius, radius, radius + half_length], axis=-1)
    size[shape == CAPSULE] = capsule[shape == CAPSULE]
    mass = rng.uniform(*DENSITY, size=(S, K)) * volume(shape, size)
    rot = Rotation.random(S * K, rng=rng).as_matrix().reshape(S, K, 3, 3)
    pos = _place(rng, bounding_radius(shape, size))
    aim = AIM_SPREAD * rng.standard_normal((S, K, 3))
    vel = (aim - pos) / rng.uniform(*ARRIVAL_TIME, size=(S, K, 1))
    axis = rng.standard_normal((S, K, 3))
    axis /= np.linalg.norm(axis, axis=-1, keepdims=True)
    omega = axis * rng.uniform(0, MAX_SPIN, size=(S, K, 1))
    return Scenes(shape, size, mass, pos, rot, vel, omega)


def placement_radius(bodies: int) -> float:
    """Radius of the ball holding the centres: constant density of bodies for K > 4."""
    return PLACEMENT_RADIUS * max(1.0, bodies / 4) ** (1 / 3)


def _place(rng: np.random.Generator, rbound: np.ndarray, *, max_rounds: int = 1000) -> np.ndarray:
    """Centres (S, K, 3) uniform in the placement ball with non-overlapping bounding spheres.

    Bodies are placed one after another; a body whose bounding sphere meets an earlier one is drawn
    again (in every scene at once), so large K stays cheap."""
    S, K = rbound.shape
    ball = placement_radius(K)
    pos = np.empty((S, K, 3))
    for k in range(K):
        todo = np.arange(S)
        for _ in range(max_rounds):
            direction = rng.standard_normal((len(todo), 3))
            direction /= np.linalg.norm(direction, axis=-1, keepdims=True)
            pos[todo, k] = direction * ball * rng.uniform(size=(len(todo), 1)) ** (1 / 3)
            gap = np.linalg.norm(pos[todo, :k] - pos[todo, k:k + 1], axis=-1)         # (T, k)
            todo = todo[(gap <= rbound[todo, :k] + rbound[todo, k:k + 1]).any(axis=1)]
            if len(todo) == 0:
                break
        else:
            raise RuntimeError(f"could not place {K} bodies apart in a ball of radius {ball}")
    return pos


def markers(scenes: Scenes) -> tuple[np.ndarray, np.ndarray]:
    """Marker positions and velocities (S, K, M, 3): the centre and centre + axis_i * size_i."""
    offsets = scenes.rot * scenes.size[..., None, :]                 # (S, K, 3, 3) columns
    offsets = np.concatenate([np.zeros_like(offsets[..., :1]), offsets], axis=-1)  # (S, K, 3, M)
    offsets = np.swapaxes(offsets, -1, -2)                           # (S, K, M, 3)
    pos = scenes.pos[..., None, :] + offsets
    vel = scenes.vel[..., None, :] + np.cross(scenes.omega[..., None, :], offsets)
    assert pos.shape[-2] == MARKERS
    return pos, vel


def props(scenes: Scenes) -> np.ndarray:
    """Per-body invariant scalars (S, K, P) in the column order of format.PROPS_COLUMNS."""
    onehot = np.eye(len(SHAPES))[scenes.shape]                       # (S, K, 4)
    out = np.concatenate([scenes.mass[..., None], scenes.size, onehot], axis=-1)
    assert out.shape[-1] == PROPS
    return out


def scenes_from_markers(pos0: np.ndarray, vel0: np.ndarray, props_: np.ndarray) -> Scenes:
    """Invert `markers`/`props`: recover each body's state from its markers (any frame handedness)."""
    pos0, vel0, props_ = (np.asarray(a, dtype=np.float64) for a in (pos0, vel0, props_))
    size = props_[..., 1:4]                                          # (S, K, 3)
    shape = props_[..., 4:].argmax(axis=-1)
    centre, v = pos0[..., 0, :], vel0[..., 0, :]
    axes = np.swapaxes(pos0[..., 1:, :] - centre[..., None, :], -1, -2) / size[..., None, :]
    u, _, vt = np.linalg.svd(axes)                                   # nearest orthogonal frame
    rot = u @ vt                                                     # (S, K, 3, 3), det +-1
    dv = (vel0[..., 1:, :] - v[..., None, :]) / size[..., :, None]   # (S, K, 3, 3) rows: axis i
    omega = 0.5 * np.cross(np.swapaxes(rot, -1, -2), dv).sum(axis=-2)  # sum_i u_i x du_i / 2
    return Scenes(shape, size, props_[..., 0], centre, rot, v, omega)


def markers_from_poses(size: np.ndarray, pos: np.ndarray, rot: np.ndarray) -> np.ndarray:
    """Marker positions (S, K, M, 3) of bodies at centres pos (S, K, 3) with frames rot (S, K, 3, 3)."""
    offsets = np.swapaxes(rot * size[..., None, :], -1, -2)          # (S, K, 3, 3) rows: axis i
    return np.concatenate([pos[..., None, :], pos[..., None, :] + offsets], axis=-2)
