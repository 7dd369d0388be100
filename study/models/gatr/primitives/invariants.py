"""The invariant inner product of multivectors (what attention and layer norm are built on)."""

from __future__ import annotations

import torch

from study.models.gatr.primitives.blades import NON_E0


def non_e0_mask(x: torch.Tensor) -> torch.Tensor:
    """(16,) 1 on the components without e0 (1, e1, e2, e3, e12, e13, e23, e123), 0 elsewhere."""
    mask = torch.zeros(16, dtype=x.dtype, device=x.device)
    mask[list(NON_E0)] = 1.0
    return mask


def inner_product(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """<x̃ y>_0 = Σ over the non-e0 components of x_i y_i: (..., 16), (..., 16) -> (...,)."""
    return (x * y * non_e0_mask(x)).sum(-1)
