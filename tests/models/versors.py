"""The action of E(3) on (..., 16) multivectors by versors, for equivariance tests.

ρ_u(x) = u x u⁻¹ (u even) or u x̂ u⁻¹ (u odd, x̂ the grade involution); under this action the
trivector embedding of a point is equivariant only up to the sign det(R) (a "pseudo" point):
ρ_g(embed(p)) = det(R) · embed(R p + t). The network compensates with each body's chirality.
"""

from __future__ import annotations

import torch

from study.models.gatr.primitives import geometric_product, grade_involution, reverse


def plane_vector(normal: torch.Tensor, offset: torch.Tensor | float = 0.0) -> torch.Tensor:
    """Grade-1 multivector n1 e1 + n2 e2 + n3 e3 + d e0 (a plane; as a versor, the reflection in it)."""
    out = normal.new_zeros(*normal.shape[:-1], 16)
    out[..., 2:5] = normal
    out[..., 1] = offset
    return out


def translator(t: torch.Tensor) -> torch.Tensor:
    """Even versor of the translation by t (..., 3): 1 − (t1 e01 + t2 e02 + t3 e03) / 2."""
    out = t.new_zeros(*t.shape[:-1], 16)
    out[..., 0] = 1.0
    out[..., 5:8] = -0.5 * t
    return out


def householder_normals(R: torch.Tensor) -> list[torch.Tensor]:
    """Unit normals n_1..n_k (k <= 4) with R = H(n_1) ... H(n_k), H(n) = I − 2 n nᵀ, for one R (3, 3)."""
    M = R.clone()
    normals = []
    eye = torch.eye(3, dtype=R.dtype, device=R.device)
    for i in range(3):
        diff = M[:, i] - eye[:, i]
        norm = torch.linalg.vector_norm(diff)
        if norm > 1e-9:
            n = diff / norm
            M = M - 2.0 * torch.outer(n, n @ M)
            normals.append(n)
    if M[2, 2] < 0:  # remaining −1 on the last axis
        normals.append(eye[:, 2])
    return normals


def versor(R: torch.Tensor, t: torch.Tensor) -> tuple[torch.Tensor, bool]:
    """PGA versor (16,) of x ↦ R x + t for one element (R (3, 3), t (3,)) and whether it is odd."""
    u = translator(t)
    normals = householder_normals(R)
    for n in normals:
        u = geometric_product(u, plane_vector(n))
    return u, len(normals) % 2 == 1


def versors(R: torch.Tensor, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Batched `versor`: R (B, 3, 3), t (B, 3) -> u (B, 16), odd (B,) bool."""
    pairs = [versor(R[b], t[b]) for b in range(R.shape[0])]
    return torch.stack([u for u, _ in pairs]), torch.tensor([odd for _, odd in pairs])


def act(u: torch.Tensor, x: torch.Tensor, odd: bool | torch.Tensor) -> torch.Tensor:
    """ρ_u(x): u (..., 16) broadcasts against x (..., 16); odd a bool or one per leading index of u."""
    inverse = reverse(u) / geometric_product(u, reverse(u))[..., :1]
    odd = torch.as_tensor(odd, device=x.device)
    if odd.ndim:
        odd = odd.reshape(*odd.shape, *([1] * (x.ndim - odd.ndim)))
    x = torch.where(odd, grade_involution(x), x)
    return geometric_product(geometric_product(u, x), inverse)
