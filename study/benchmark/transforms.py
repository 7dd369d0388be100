"""E(3) elements (rotation or rotoreflection plus translation) and their action on benchmark batches."""

from __future__ import annotations

import torch

REFLECTION_PROB = 0.5       # an augmentation's element is a rotoreflection (det -1) with this probability
TRANSLATION_SCALE = 1.0     # its translation is N(0, TRANSLATION_SCALE²) per axis (scene units, as positions)


def random_e3(
    n: int,
    *,
    generator: torch.Generator | None = None,
    dtype: torch.dtype = torch.float32,
    reflection_prob: float = REFLECTION_PROB,
    translation_scale: float = TRANSLATION_SCALE,
) -> tuple[torch.Tensor, torch.Tensor]:
    """n random E(3) elements: Haar orthogonal R (n, 3, 3) (det -1 with `reflection_prob`) and t (n, 3) ~
    N(0, translation_scale²) per axis (drawn even at scale 0, so the rotations match those of the default)."""
    gaussian = torch.randn(n, 3, 3, generator=generator, dtype=torch.float64)
    q, r = torch.linalg.qr(gaussian)  # Haar on O(3) after fixing the signs of diag(r)
    q = q * torch.sign(torch.diagonal(r, dim1=-2, dim2=-1)).unsqueeze(-2)
    det = torch.linalg.det(q)
    reflect = torch.rand(n, generator=generator, dtype=torch.float64) < reflection_prob
    want = torch.where(reflect, -1.0, 1.0).to(torch.float64)
    q = q * (want * det).view(n, 1, 1)  # flip all three axes: det multiplies by -1 when needed
    t = translation_scale * torch.randn(n, 3, generator=generator, dtype=torch.float64)
    return q.to(dtype), t.to(dtype)


def apply_to_points(R: torch.Tensor, t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """x' = R x + t for points x (B, ..., 3) with one element per batch row (R (B, 3, 3), t (B, 3))."""
    lead = x.shape[1:-1]
    flat = x.reshape(x.shape[0], -1, 3)                      # (B, L, 3)
    out = flat @ R.transpose(-1, -2) + t.unsqueeze(1)        # (B, L, 3)
    return out.reshape(x.shape[0], *lead, 3)


def apply_to_vectors(R: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """v' = R v for translation-invariant vectors v (B, ..., 3) (velocities, displacements)."""
    lead = v.shape[1:-1]
    flat = v.reshape(v.shape[0], -1, 3)                      # (B, L, 3)
    return (flat @ R.transpose(-1, -2)).reshape(v.shape[0], *lead, 3)


def transform_batch(R, t, pos0, vel0, props, posT=None):
    """Apply one E(3) element per scene to inputs (and targets): props are invariant."""
    pos0 = apply_to_points(R, t, pos0)
    vel0 = apply_to_vectors(R, vel0)
    posT = None if posT is None else apply_to_points(R, t, posT)
    return pos0, vel0, props, posT
