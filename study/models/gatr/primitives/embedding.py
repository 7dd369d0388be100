"""Scalars, points and directions in and out of (..., 16) multivectors.

Point (x, y, z) -> trivector with e123 = 1, e023 = −x, e013 = y, e012 = −z; a direction (velocity)
takes the same slots with e123 = 0 (an ideal point: translation invariant).
"""

from __future__ import annotations

import torch

from study.models.gatr.primitives.blades import E012, E013, E023, E123


def embed_scalar(s: torch.Tensor) -> torch.Tensor:
    """(...,) -> (..., 16) with the scalar in component 0."""
    out = s.new_zeros(*s.shape, 16)
    out[..., 0] = s
    return out


def embed_point(p: torch.Tensor) -> torch.Tensor:
    """(..., 3) -> (..., 16) trivector with e123 = 1, e023 = −x, e013 = y, e012 = −z."""
    return _trivector(p, p.new_ones(p.shape[:-1]))


def embed_direction(v: torch.Tensor) -> torch.Tensor:
    """(..., 3) -> (..., 16) trivector with e123 = 0."""
    return _trivector(v, v.new_zeros(v.shape[:-1]))


def _trivector(p: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    out = p.new_zeros(*p.shape[:-1], 16)                              # (..., 16)
    out[..., E123] = w
    out[..., E023] = -p[..., 0]
    out[..., E013] = p[..., 1]
    out[..., E012] = -p[..., 2]
    return out


def trivector_weight(x: torch.Tensor) -> torch.Tensor:
    """The e123 component, kept as a trailing axis: (..., 16) -> (..., 1)."""
    return x[..., E123 : E123 + 1]


def trivector_direction(x: torch.Tensor) -> torch.Tensor:
    """The (x, y, z) slots of a trivector, not divided by e123: (..., 16) -> (..., 3)."""
    return torch.stack([-x[..., E023], x[..., E013], -x[..., E012]], dim=-1)


def extract_point(x: torch.Tensor, *, eps: float = 1e-6) -> torch.Tensor:
    """(..., 16) -> (..., 3): trivector slots divided by e123 (|e123| clamped to >= eps, sign kept)."""
    w = x[..., E123]
    w = torch.where(w >= 0, w.clamp(min=eps), w.clamp(max=-eps))
    return trivector_direction(x) / w.unsqueeze(-1)
