"""Tables of G(3,0,1) generated from the blade rules (not typed in): products, dual, signs, linear basis.

Built once on first use, always on the CPU in float64 (so that a `torch.device("meta")` context
cannot leak into the cache); `table` converts a copy.
"""

from __future__ import annotations

from functools import lru_cache

import torch

from study.models.gatr.primitives.blades import BLADES, GRADES, INDEX, blade_product

CPU = torch.device("cpu")


def _zeros(*shape: int) -> torch.Tensor:
    return torch.zeros(*shape, dtype=torch.float64, device=CPU)


def _product_tables() -> tuple[torch.Tensor, torch.Tensor]:
    """Geometric product (192 non-zeros) and outer product (81) as (16 i, 16 j, 16 k): z_i = Σ T_ijk x_j y_k."""
    gp, outer = _zeros(16, 16, 16), _zeros(16, 16, 16)
    for j, a in enumerate(BLADES):
        for k, b in enumerate(BLADES):
            sign, c = blade_product(a, b)
            if sign == 0.0:
                continue
            gp[INDEX[c], j, k] = sign
            if len(c) == len(a) + len(b):
                outer[INDEX[c], j, k] = sign
    return gp, outer


def _dual_table() -> torch.Tensor:
    """Right complement (16 out, 16 in): e_A ∧ dual(e_A) = e0123."""
    dual = _zeros(16, 16)
    for j, a in enumerate(BLADES):
        comp = tuple(v for v in range(4) if v not in a)
        sign, _ = blade_product(a, comp)
        dual[INDEX[comp], j] = sign
    return dual


def _linear_basis() -> torch.Tensor:
    """The 9 equivariant linear maps (9, 16 out, 16 in): grade projections 0..4, then x ↦ e0·<x>_g, g = 0..3."""
    basis = _zeros(9, 16, 16)
    for g in range(5):
        for i in range(16):
            if GRADES[i] == g:
                basis[g, i, i] = 1.0
    for g in range(4):
        for j, a in enumerate(BLADES):
            if GRADES[j] == g and 0 not in a:
                sign, c = blade_product((0,), a)
                basis[5 + g, INDEX[c], j] = sign
    return basis


@lru_cache(maxsize=None)
def _tables() -> dict[str, torch.Tensor]:
    gp, outer = _product_tables()
    dual = _dual_table()
    undual = torch.linalg.inv(dual)
    join = torch.einsum("il,lmn,mj,nk->ijk", undual, outer, dual, dual)  # undual(dual x ∧ dual y)
    reverse = torch.tensor([(-1.0) ** (g * (g - 1) // 2) for g in GRADES], dtype=torch.float64, device=CPU)
    involution = torch.tensor([(-1.0) ** g for g in GRADES], dtype=torch.float64, device=CPU)
    return {"gp": gp, "outer": outer, "join": join, "dual": dual, "reverse": reverse,
            "involution": involution, "linear_basis": _linear_basis()}


def table(name: str, *, dtype=torch.float64, device=None) -> torch.Tensor:
    """A copy of one table: gp, outer, join (16,16,16); dual (16,16); reverse, involution (16,);
    linear_basis (9,16,16) (see `_linear_basis`)."""
    return _tables()[name].to(dtype=dtype, device=CPU if device is None else device, copy=True)


@lru_cache(maxsize=None)
def bilinear_terms(name: str) -> tuple[tuple[int, int, int, float], ...]:
    """Non-zero entries (i, j, k, sign) of a bilinear table: (x ∘ y)_i = Σ sign · x_j · y_k."""
    t = _tables()[name]
    return tuple((i, j, k, float(t[i, j, k])) for i, j, k in t.nonzero().tolist())
