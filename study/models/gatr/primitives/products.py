"""Products and involutions of (..., 16) multivectors: geometric, outer, join, dual, reverse.

Contractions with the generated tables (reference-grade and differentiable; the network's MLP uses
the elementwise kernel in layers/bilinear_kernel.py instead).
"""

from __future__ import annotations

import torch

from study.models.gatr.primitives.blades import E123
from study.models.gatr.primitives.tables import table


def bilinear(name: str, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """z_i = Σ T_ijk x_j y_k for the table `name` ("gp", "outer", "join"); x, y (..., 16) broadcast."""
    t = table(name, dtype=x.dtype, device=x.device)                   # (16, 16, 16)
    return torch.einsum("ijk,...j,...k->...i", t, *torch.broadcast_tensors(x, y))


def geometric_product(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """xy for (..., 16) multivectors."""
    return bilinear("gp", x, y)


def outer_product(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """x ∧ y (the grade-adding part of xy)."""
    return bilinear("outer", x, y)


def join(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Regressive product x ∨ y = undual(dual x ∧ dual y); equivariant only up to det(g)."""
    return bilinear("join", x, y)


def equi_join(x: torch.Tensor, y: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """Reflection-equivariant join: (x ∨ y) times the e123 component of `reference` (both flip sign
    under reflections); `reference` (..., 16) broadcasts against x."""
    return reference[..., E123 : E123 + 1] * join(x, y)


def dual(x: torch.Tensor) -> torch.Tensor:
    """Right complement: e_A ∧ dual(e_A) = e0123."""
    return x @ table("dual", dtype=x.dtype, device=x.device).T


def reverse(x: torch.Tensor) -> torch.Tensor:
    """x̃: the order of every blade's vectors reversed (sign (−1)^(g(g−1)/2) per grade g)."""
    return x * table("reverse", dtype=x.dtype, device=x.device)


def grade_involution(x: torch.Tensor) -> torch.Tensor:
    """x̂: sign (−1)^g per grade g."""
    return x * table("involution", dtype=x.dtype, device=x.device)
