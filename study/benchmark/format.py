"""The benchmark's public array format: names, shapes and the meaning of each `props` column.

Arrays (float32 on disk, S scenes, K bodies, M markers, P props):
  pos0  (S, K, M, 3)  marker positions at t=0 (world frame, metres)
  vel0  (S, K, M, 3)  marker velocities at t=0 (metres/second)
  props (S, K, P)     per-body E(3)-invariant scalars, columns as in PROPS_COLUMNS
  posT  (S, K, M, 3)  marker positions after the horizon
Marker 0 is the centre of mass; marker i (1..3) sits at the centre plus the i-th principal axis
scaled by the body's half-extent along it (props column size_{i-1}), so the markers carry the full
pose. Markers are material points of the body, and vel0 is the rigid velocity field at them
(vel_i = v + omega x (pos_i - pos_0)). Generated scenes have right-handed axis frames; an E(3)
element g, reflections included, maps the markers of a scene (inputs and targets) to the markers of
the transformed scene, whose frame is then left-handed: still a valid body of the same type, since
every primitive is symmetric under flipping one of its axes (the simulator is tested to commute
with g up to solver tolerance; see study/benchmark/symmetry.py).
Scenes: K free bodies in zero gravity (MuJoCo, elliptic friction cones), aimed at each other;
posT is taken after `horizon` seconds. The capsule's long axis is axis 3.
On disk (study/benchmark/cache.py): `<cache dir>/benchmark/<key>.npz` holds these arrays for all S
scenes (train, then val, then test), `contact` (S,) bool and `meta`, a JSON string with the
settings, statistics and SHA-256 checksums of the arrays.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field, replace

import torch

ARRAYS = ("pos0", "vel0", "props", "posT")
MARKERS = 4
SHAPES = ("box", "sphere", "ellipsoid", "capsule")
PROPS_COLUMNS = (
    "mass",          # kg
    "size_0",        # half-extents / radii of the primitive along its principal axes, metres
    "size_1",        #   (sphere: r, r, r; capsule: r, r, half-length + r)
    "size_2",
    "is_box",        # one-hot shape type, order as in SHAPES
    "is_sphere",
    "is_ellipsoid",
    "is_capsule",
)
PROPS = len(PROPS_COLUMNS)


@dataclass(frozen=True)
class Split:
    """One split of the dataset as tensors (see the module docstring for shapes)."""

    pos0: torch.Tensor   # (S, K, M, 3)
    vel0: torch.Tensor   # (S, K, M, 3)
    props: torch.Tensor  # (S, K, P)
    posT: torch.Tensor   # (S, K, M, 3)

    def __len__(self) -> int:
        return self.pos0.shape[0]

    def to(self, *args, **kwargs) -> "Split":
        """Move/cast every tensor (like `Tensor.to`)."""
        return Split(*(getattr(self, name).to(*args, **kwargs) for name in ARRAYS))

    def __getitem__(self, index) -> "Split":
        return Split(*(getattr(self, name)[index] for name in ARRAYS))

    def numpy(self) -> "Split":
        """The same memory as NumPy arrays: Ray's object store hands those to every worker without a copy
        (pickled tensors are copied into each worker, once per trial)."""
        return Split(*(_as_numpy(getattr(self, name)) for name in ARRAYS))

    def tensors(self) -> "Split":
        """Tensors on the same memory (read-only arrays from the object store included; never written)."""
        return Split(*(_as_tensor(getattr(self, name)) for name in ARRAYS))


def _as_numpy(array):
    return array.numpy() if isinstance(array, torch.Tensor) else array


def _as_tensor(array) -> torch.Tensor:
    if isinstance(array, torch.Tensor):
        return array
    with warnings.catch_warnings():  # object-store arrays are read-only; training only reads them
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        return torch.from_numpy(array)


@dataclass(frozen=True)
class Dataset:
    """Train/val/test splits plus the cache key of the settings that generated them."""

    train: Split
    val: Split
    test: Split
    key: str
    path: str | None = None          # the cache file the arrays live in
    from_cache: bool = False         # True when served from an existing cache file
    stats: dict = field(default_factory=dict)  # scenes, contact_fraction, mean_displacement, ...

    def numpy(self) -> "Dataset":
        """Every split as NumPy arrays on the same memory (for Ray's object store; see `Split.numpy`)."""
        return replace(self, train=self.train.numpy(), val=self.val.numpy(), test=self.test.numpy())

    def tensors(self) -> "Dataset":
        """Every split as tensors on the same memory (the inverse of `numpy`; tensors stay as they are)."""
        return replace(self, train=self.train.tensors(), val=self.val.tensors(), test=self.test.tensors())
