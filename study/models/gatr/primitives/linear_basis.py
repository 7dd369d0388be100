"""The 9 Pin(3,0,1)-equivariant linear maps of a multivector: y_o = Σ_{c,a} W[o,c,a] B_a x_c spans them all.

Maps (in this order): the grade projections <x>_0 .. <x>_4, then x ↦ e0·<x>_g for g = 0..3.
"""

from __future__ import annotations

import torch

from study.models.gatr.primitives.tables import table

BASIS_MAPS = 9


def linear_basis(*, dtype=torch.float64, device=None) -> torch.Tensor:
    """(9, 16 out, 16 in): y = B[a] x applies map a."""
    return table("linear_basis", dtype=dtype, device=device)

