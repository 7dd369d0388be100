"""MuJoCo simulation of `Scenes`: one compiled template per body count, edited per scene, stepped in C.

Compiling XML per scene costs ~0.5 ms and copying an MjModel ~0.3 ms, so a `Simulator` keeps a pool of
template models and overwrites the per-scene fields (geom type/size/bounds, body mass/inertia), then
lets `mj_setConst` recompute the derived constants; `tests/benchmark/test_simulate.py` checks every
model field against a model compiled from the equivalent XML. `mujoco.rollout` steps the pool on
`threads` threads; each rollout starts from a fully specified state, so results do not depend on
the number of threads.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import mujoco
import numpy as np
from mujoco import rollout
from scipy.spatial.transform import Rotation

from study.benchmark.scenes import CAPSULE, SPHERE, Scenes, markers_from_poses, principal_inertia

_MJ_TYPE = {0: mujoco.mjtGeom.mjGEOM_BOX, 1: mujoco.mjtGeom.mjGEOM_SPHERE,
            2: mujoco.mjtGeom.mjGEOM_ELLIPSOID, 3: mujoco.mjtGeom.mjGEOM_CAPSULE}
# Pipeline stages with nothing to do in these scenes (no actuators, springs, dampers; one geom per body):
# skipping them leaves every trajectory bit-identical (tested) and saves ~5% per step.
UNUSED_STAGES = 'actuation="disable" spring="disable" damper="disable" clampctrl="disable" midphase="disable"'
# Contact stiffness: MuJoCo's default time constant (20 ms) lets 3 m/s bodies sink ~2-5 cm into each
# other for ~10 steps; 5 ms keeps penetrations at a few millimetres, halves the contact steps and is
# above MuJoCo's stability limit of 2 dt for dt <= 2.5 ms (beyond that, 2 dt is used).
CONTACT_TIMECONST = 0.005
_XML_TYPE = {0: "box", 1: "sphere", 2: "ellipsoid", 3: "capsule"}


def scene_xml(bodies: int, *, dt: float, shape=None, size=None, mass=None) -> str:
    """MJCF for K free bodies in zero gravity with a contact sensor; all at the origin.

    Without shape/size/mass it is the template (unit boxes); with them (K,), (K, 3), (K,) it is the
    reference model the edited template must equal."""
    parts = []
    for k in range(bodies):
        if shape is None:
            geom = 'type="box" size="0.1 0.1 0.1" mass="1"'
        else:
            s = mujoco_size(np.asarray(shape[k]), np.asarray(size[k]))
            geom = f'type="{_XML_TYPE[int(shape[k])]}" size="{" ".join(repr(float(x)) for x in s)}" mass="{float(mass[k])!r}"'
        parts.append(f'<body name="b{k}"><freejoint/><geom {geom}/></body>')
    return (
        f'<mujoco><option gravity="0 0 0" timestep="{dt!r}" integrator="implicitfast" cone="elliptic">'
        f'<flag {UNUSED_STAGES}/></option>'
        f'<default><geom solref="{max(CONTACT_TIMECONST, 2 * dt)!r} 1"/></default>'
        f'<worldbody>{"".join(parts)}</worldbody><sensor><contact data="found"/></sensor></mujoco>'
    )


def mujoco_size(shape: np.ndarray, size: np.ndarray) -> np.ndarray:
    """MuJoCo's geom_size (..., 3) from half-extents (sphere (r, 0, 0); capsule (r, h, 0))."""
    out = size.copy()
    sphere, capsule = shape == SPHERE, shape == CAPSULE
    out[sphere] = size[sphere] * [1.0, 0.0, 0.0]
    out[capsule] = np.stack([size[capsule][:, 0], size[capsule][:, 2] - size[capsule][:, 0],
                             np.zeros(capsule.sum())], axis=-1)
    return out


@dataclass(frozen=True)
class Outcome:
    """Final poses and contact flags of a batch: pos (S, K, 3), rot (S, K, 3, 3), contact (S,) bool."""

    pos: np.ndarray
    rot: np.ndarray
    contact: np.ndarray

    def markers(self, size: np.ndarray) -> np.ndarray:
        """Marker positions (S, K, M, 3) at the end of the horizon."""
        return markers_from_poses(size, self.pos, self.rot)


class Simulator:
    """Simulates batches of scenes with K bodies for `steps` steps of `dt` on `threads` threads.

    Scenes go through in chunks of `chunk`; two pools of template models alternate, so the next
    chunk's models are edited (Python) while the current chunk rolls out (C threads, GIL released)."""

    def __init__(self, bodies: int, *, dt: float, steps: int, threads: int = 1, chunk: int = 128):
        self.bodies, self.dt, self.steps, self.chunk = bodies, dt, steps, chunk
        template = mujoco.MjModel.from_xml_string(scene_xml(bodies, dt=dt))
        models = [template] + [_copy(template) for _ in range(2 * chunk - 1)]
        self._pools = [[_Views(m) for m in models[:chunk]], [_Views(m) for m in models[chunk:]]]
        self._datas = [mujoco.MjData(template) for _ in range(threads)]
        self._pool = rollout.Rollout(nthread=threads if threads > 1 else 0)   # our own C thread pool
        self._scratch = mujoco.MjData(template)   # for mj_setConst while a rollout runs
        self._spec = mujoco.mjtState.mjSTATE_FULLPHYSICS
        self._nstate = mujoco.mj_stateSize(template, self._spec)
        assert self._nstate == 1 + template.nq + template.nv, "unexpected state layout"
        self._buffers = [(np.empty((chunk, steps, self._nstate)), np.empty((chunk, steps, template.nsensordata)))
                         for _ in range(2)]

    def close(self) -> None:
        """Stop the rollout threads and release the models and data."""
        if self._pool is not None:
            self._pool.close()
        self._pool, self._pools, self._datas, self._buffers = None, [[], []], [], []

    def __enter__(self) -> "Simulator":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def run(self, scenes: Scenes, *, on_chunk: Callable[[int], None] | None = None) -> Outcome:
        """Simulate `scenes` (any handedness of frames); `on_chunk(n)` after each chunk of n scenes."""
        S, K = scenes.shape.shape
        assert K == self.bodies, f"simulator built for {self.bodies} bodies, got {K}"
        flip = _axis_flip(scenes.rot)                                     # (S, K, 1, 3)
        rot = scenes.rot * flip                                           # proper rotations
        quat = Rotation.from_matrix(rot.reshape(-1, 3, 3)).as_quat(scalar_first=True)
        omega_local = np.einsum("skji,skj->ski", rot, scenes.omega)      # R^T omega (free joint)
        state = np.zeros((S, self._nstate))
        state[:, 1:1 + 7 * K] = np.concatenate([scenes.pos, quat.reshape(S, K, 4)], axis=-1).reshape(S, 7 * K)
        state[:, 1 + 7 * K:] = np.concatenate([scenes.vel, omega_local], axis=-1).reshape(S, 6 * K)
        fields = _Fields.of(scenes)
        final = np.empty((S, 7 * K))
        contact = np.empty(S, dtype=bool)

        def collect(future, lo, hi):
            states, sensors = future.result()
            final[lo:hi] = states[:, -1, 1:1 + 7 * K]
            contact[lo:hi] = (sensors[:, :, 0] > 0).any(axis=1)
            if on_chunk is not None:
                on_chunk(hi - lo)

        pending = None
        with ThreadPoolExecutor(max_workers=1) as executor:
            for j, lo in enumerate(range(0, S, self.chunk)):
                hi = min(lo + self.chunk, S)
                pool = self._pools[j % 2][: hi - lo]
                for i, views in enumerate(pool):
                    _edit(views, self._scratch, fields, lo + i)
                if pending is not None:
                    collect(*pending)
                future = executor.submit(self._rollout, [v.model for v in pool], state[lo:hi], j % 2)
                pending = (future, lo, hi)
            if pending is not None:
                collect(*pending)
        final = final.reshape(S, K, 7)
        rot_t = Rotation.from_quat(final[..., 3:].reshape(-1, 4), scalar_first=True).as_matrix()
        return Outcome(final[..., :3], rot_t.reshape(S, K, 3, 3) * flip, contact)

    def _rollout(self, models, initial, buffer: int):
        state, sensor = (b[: len(models)] for b in self._buffers[buffer])
        self._pool.rollout(models, self._datas, initial, nstep=self.steps, state=state, sensordata=sensor)
        return state, sensor


def _axis_flip(rot: np.ndarray) -> np.ndarray:
    """(S, K, 1, 3) column signs that turn det -1 frames into rotations by flipping the first axis."""
    sign = np.where(np.linalg.det(rot) < 0, -1.0, 1.0)[..., None, None]
    return np.concatenate([sign, np.ones_like(sign), np.ones_like(sign)], axis=-1)


def _copy(model: mujoco.MjModel) -> mujoco.MjModel:
    return copy.copy(model)


@dataclass(frozen=True)
class _Fields:
    """Per-scene values of the edited model fields, vectorised over scenes (S, K, ...)."""

    geom_type: np.ndarray   # (S, K) mjtGeom
    geom_size: np.ndarray   # (S, K, 3)
    half: np.ndarray        # (S, K, 3) axis-aligned half-extents (AABB in the body frame)
    rbound: np.ndarray      # (S, K)
    mass: np.ndarray        # (S, K)
    inertia: np.ndarray     # (S, K, 3)

    @classmethod
    def of(cls, scenes: Scenes) -> "_Fields":
        half = scenes.size
        rbound = np.where(scenes.shape == 0, np.linalg.norm(half, axis=-1), half.max(axis=-1))
        return cls(_MJ_TYPES[scenes.shape], mujoco_size(scenes.shape, scenes.size), half, rbound,
                   scenes.mass, principal_inertia(scenes.shape, scenes.size, scenes.mass))


_MJ_TYPES = np.array([_MJ_TYPE[i] for i in range(len(_MJ_TYPE))], dtype=np.int32)


class _Views:
    """Cached numpy views of the fields `_edit` writes (each attribute access costs ~1 us)."""

    def __init__(self, model: mujoco.MjModel):
        K = model.ngeom
        self.model = model
        self.geom_type, self.geom_size = model.geom_type[:K], model.geom_size[:K]
        self.geom_half, self.geom_rbound = model.geom_aabb[:K, 3:], model.geom_rbound[:K]
        self.bvh = model.body_bvhadr[1:K + 1].copy()
        self.bvh_aabb = model.bvh_aabb
        self.body_mass, self.body_inertia = model.body_mass[1:K + 1], model.body_inertia[1:K + 1]


def _edit(views: _Views, data: mujoco.MjData, fields: _Fields, i: int) -> None:
    """Overwrite the per-scene fields of a template model (K bodies, one geom each) in place."""
    v = views
    v.geom_type[:] = fields.geom_type[i]
    v.geom_size[:] = fields.geom_size[i]
    v.geom_half[:] = fields.half[i]
    v.geom_rbound[:] = fields.rbound[i]
    v.bvh_aabb[v.bvh, 3:] = fields.half[i]
    v.body_mass[:] = fields.mass[i]
    v.body_inertia[:] = fields.inertia[i]
    mujoco.mj_setConst(v.model, data)
    # statistics the compiler derives and mj_setConst leaves alone (meaninertia scales solver tolerances)
    stat, mass, rbound = v.model.stat, fields.mass[i], fields.rbound[i]
    stat.meanmass = mass.mean()
    stat.meaninertia = (3 * mass.sum() + fields.inertia[i].sum()) / (6 * len(mass))  # trace(M)/nv
    stat.meansize = rbound.mean()
    stat.extent = 2 * rbound.max()
