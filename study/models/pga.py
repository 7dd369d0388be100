"""Projective geometric algebra G(3,0,1) on (..., 16) tensors: tables, products, embeddings, versors.

Components: 1, e0, e1, e2, e3, e01, e02, e03, e12, e13, e23, e012, e013, e023, e123, e0123;
e0² = 0, e1² = e2² = e3² = 1. Tables are generated from blade rules at import (not typed in).
The group acts by ρ_u(x) = u x u⁻¹ (u even) or u x̂ u⁻¹ (u odd, x̂ the grade involution); under this
action the trivector embedding of a point is equivariant only up to the sign det(R) (a "pseudo"
point): ρ_g(embed(p)) = det(R) · embed(R p + t). gatr.py compensates with the body's chirality.
"""

from __future__ import annotations

from functools import lru_cache
from itertools import combinations

import torch

METRIC = (0.0, 1.0, 1.0, 1.0)
BLADES: tuple[tuple[int, ...], ...] = tuple(
    blade for grade in range(5) for blade in combinations(range(4), grade)
)
GRADES = tuple(len(b) for b in BLADES)
INDEX = {blade: i for i, blade in enumerate(BLADES)}
NON_E0 = tuple(i for i, b in enumerate(BLADES) if 0 not in b)  # 1, e1, e2, e3, e12, e13, e23, e123
E012, E013, E023, E123, E0123 = (INDEX[b] for b in [(0, 1, 2), (0, 1, 3), (0, 2, 3), (1, 2, 3), (0, 1, 2, 3)])


def blade_product(a: tuple[int, ...], b: tuple[int, ...]) -> tuple[float, tuple[int, ...]]:
    """e_a e_b = sign · e_c: sort the concatenated indices counting swaps, contract repeats with the metric."""
    idx, sign = list(a + b), 1.0
    for i in range(len(idx)):  # bubble sort: each swap of distinct basis vectors flips the sign
        for j in range(len(idx) - 1 - i):
            if idx[j] > idx[j + 1]:
                idx[j], idx[j + 1] = idx[j + 1], idx[j]
                sign = -sign
    out: list[int] = []
    for v in idx:
        if out and out[-1] == v:
            out.pop()
            sign *= METRIC[v]
        else:
            out.append(v)
    return sign, tuple(out)


@lru_cache(maxsize=None)
def _tables() -> dict[str, torch.Tensor]:
    gp = torch.zeros(16, 16, 16, dtype=torch.float64)
    outer = torch.zeros(16, 16, 16, dtype=torch.float64)
    for j, a in enumerate(BLADES):
        for k, b in enumerate(BLADES):
            sign, c = blade_product(a, b)
            if sign == 0.0:
                continue
            gp[INDEX[c], j, k] = sign
            if len(c) == len(a) + len(b):
                outer[INDEX[c], j, k] = sign
    # dual: right complement, e_A ∧ dual(e_A) = e0123
    dual = torch.zeros(16, 16, dtype=torch.float64)
    for j, a in enumerate(BLADES):
        comp = tuple(v for v in range(4) if v not in a)
        sign, _ = blade_product(a, comp)
        dual[INDEX[comp], j] = sign
    undual = torch.linalg.inv(dual)
    # x ∨ y = undual(dual(x) ∧ dual(y))
    join = torch.einsum("il,lmn,mj,nk->ijk", undual, outer, dual, dual)
    reverse = torch.tensor([(-1.0) ** (g * (g - 1) // 2) for g in GRADES], dtype=torch.float64)
    involution = torch.tensor([(-1.0) ** g for g in GRADES], dtype=torch.float64)
    basis = torch.zeros(8, 16, 16, dtype=torch.float64)  # linear maps y = B x other than <x>_0
    for g in range(1, 5):  # grade projections 1..4
        for i in range(16):
            if GRADES[i] == g:
                basis[g - 1, i, i] = 1.0
    for g in range(4):  # x -> e0 <x>_g
        for j, a in enumerate(BLADES):
            if GRADES[j] == g and 0 not in a:
                sign, c = blade_product((0,), a)
                basis[4 + g, INDEX[c], j] = sign
    return {"gp": gp, "outer": outer, "join": join, "dual": dual, "reverse": reverse,
            "involution": involution, "basis": basis}


def table(name: str, *, dtype=torch.float64, device=None) -> torch.Tensor:
    """One of the generated tables: gp, outer, join (16,16,16); dual (16,16); reverse, involution
    (16,); basis (8,16,16): grade projections 1..4 and x ↦ e0·<x>_g for g = 0..3."""
    return _tables()[name].to(dtype=dtype, device=device)


@lru_cache(maxsize=None)
def bilinear_terms(name: str) -> tuple[tuple[int, int, int, float], ...]:
    """Non-zero entries (i, j, k, sign) of a bilinear table: (x ∘ y)_i = Σ sign · x_j · y_k."""
    t = _tables()[name]
    return tuple((i, j, k, float(t[i, j, k])) for i, j, k in t.nonzero().tolist())


def _accumulate(out: torch.Tensor, pairs, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """out[o] = Σ sign · a[p] · b[q] over pairs (o, p, q, sign), written in place; rows without a
    term are zeroed. First touch multiplies (no zero fill), later ones fuse multiply-add."""
    touched = set()
    for o, p, q, sign in pairs:
        if o in touched:
            out[o].addcmul_(a[p], b[q], value=sign)
        else:
            torch.mul(a[p], b[q], out=out[o])
            if sign != 1.0:
                out[o].mul_(sign)
            touched.add(o)
    for o in range(out.shape[0]):
        if o not in touched:
            out[o].zero_()
    return out


class _Bilinear(torch.autograd.Function):
    """z_i = Σ s x_j y_k on component-major (16, ...) tensors, one fused multiply-add per non-zero
    table entry (elementwise, no 16×16×16 contraction); the backward uses the same terms."""

    @staticmethod
    def forward(ctx, name: str, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        ctx.name = name
        ctx.save_for_backward(x, y)
        return _accumulate(x.new_empty(x.shape), bilinear_terms(name), x, y)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        x, y = ctx.saved_tensors
        terms = bilinear_terms(ctx.name)
        gx = gy = None
        if ctx.needs_input_grad[1]:  # dz_i/dx_j = s y_k
            gx = _accumulate(x.new_empty(x.shape), [(j, i, k, s) for i, j, k, s in terms], grad, y)
        if ctx.needs_input_grad[2]:  # dz_i/dy_k = s x_j
            gy = _accumulate(y.new_empty(y.shape), [(k, i, j, s) for i, j, k, s in terms], grad, x)
        return None, gx, gy


class _GatedBilinear(torch.autograd.Function):
    """GATr's MLP core on component-major h (16, 4C, N) = [a, b, c, d]:
    y = [a b, ref · (c ∨ d)] (16, 2C, N), returned gated as y · gelu(<y>_0). One output buffer, no
    split/cat and no zero-filled slice backwards; `ref` (1, 1, N) is a constant (no gradient)."""

    @staticmethod
    def forward(ctx, h: torch.Tensor, ref: torch.Tensor, channels: int) -> torch.Tensor:
        a, b, c, d = h.split(channels, dim=1)                        # (16, C, N) views
        y = h.new_empty(16, 2 * channels, h.shape[2])
        _accumulate(y[:, :channels], bilinear_terms("gp"), a, b)
        _accumulate(y[:, channels:], bilinear_terms("join"), c, d).mul_(ref)
        gate = torch.nn.functional.gelu(y[0])                        # (2C, N)
        ctx.save_for_backward(h, ref, y)
        ctx.channels = channels
        return y * gate

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        h, ref, y = ctx.saved_tensors
        ch = ctx.channels
        y0 = y[0]
        gy = grad * torch.nn.functional.gelu(y0)                     # (16, 2C, N)
        gy[0] += torch.ops.aten.gelu_backward((grad * y).sum(0), y0)
        gy[:, ch:].mul_(ref)
        a, b, c, d = h.split(ch, dim=1)
        gh = torch.empty_like(h)
        terms = {n: bilinear_terms(n) for n in ("gp", "join")}
        for (name, lo, x, z) in (("gp", 0, a, b), ("join", 2 * ch, c, d)):
            g = gy[:, :ch] if name == "gp" else gy[:, ch:]
            t = terms[name]
            _accumulate(gh[:, lo : lo + ch], [(j, i, k, s) for i, j, k, s in t], g, z)
            _accumulate(gh[:, lo + ch : lo + 2 * ch], [(k, i, j, s) for i, j, k, s in t], g, x)
        return gh, None, None


def gated_bilinear(h: torch.Tensor, ref: torch.Tensor, channels: int) -> torch.Tensor:
    """[a b, ref (c ∨ d)] gated by gelu of its grade 0, for h (16, 4C, N) = [a, b, c, d]."""
    return _GatedBilinear.apply(h, ref, channels)


def bilinear(name: str, x: torch.Tensor, y: torch.Tensor, *, component_major: bool = False) -> torch.Tensor:
    """The bilinear product of table `name` ("gp", "outer", "join") of x and y (..., 16), or of
    component-major (16, ...) tensors when `component_major`."""
    if component_major:
        return _Bilinear.apply(name, x, y)
    x, y = torch.broadcast_tensors(x, y)
    z = _Bilinear.apply(name, x.movedim(-1, 0).contiguous(), y.movedim(-1, 0).contiguous())
    return z.movedim(0, -1)


def _bilinear(name: str, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return bilinear(name, x, y)


def geometric_product(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """xy for (..., 16) multivectors."""
    return _bilinear("gp", x, y)


def outer_product(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """x ∧ y (the grade-adding part of xy)."""
    return _bilinear("outer", x, y)


def join(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Regressive product x ∨ y = undual(dual x ∧ dual y); equivariant only up to det(g)."""
    return _bilinear("join", x, y)


def equi_join(x: torch.Tensor, y: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """Reflection-equivariant join: (x ∨ y) times the e123 component of `reference` (both flip sign
    under reflections); `reference` broadcasts against x (..., 16)."""
    return reference[..., E123 : E123 + 1] * join(x, y)


def dual(x: torch.Tensor) -> torch.Tensor:
    """Right complement: e_A ∧ dual(e_A) = e0123."""
    return x @ table("dual", dtype=x.dtype, device=x.device).T


def reverse(x: torch.Tensor) -> torch.Tensor:
    return x * table("reverse", dtype=x.dtype, device=x.device)


def grade_involution(x: torch.Tensor) -> torch.Tensor:
    return x * table("involution", dtype=x.dtype, device=x.device)


def inner_product(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Invariant inner product <x̃ y>_0 = Σ over the non-e0 components of x_i y_i; shape (...,)."""
    return (x * y * _non_e0_mask(x)).sum(-1)


def _non_e0_mask(x: torch.Tensor) -> torch.Tensor:
    mask = torch.zeros(16, dtype=x.dtype, device=x.device)
    mask[list(NON_E0)] = 1.0
    return mask


def embed_scalar(s: torch.Tensor) -> torch.Tensor:
    out = s.new_zeros(*s.shape, 16)
    out[..., 0] = s
    return out


def embed_point(p: torch.Tensor) -> torch.Tensor:
    """(..., 3) -> trivector with e123 = 1, e023 = -x, e013 = y, e012 = -z."""
    return _trivector(p, p.new_ones(p.shape[:-1]))


def embed_direction(v: torch.Tensor) -> torch.Tensor:
    """(..., 3) -> trivector with e123 = 0 (an ideal point: translation invariant)."""
    return _trivector(v, v.new_zeros(v.shape[:-1]))


def _trivector(p: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    out = p.new_zeros(*p.shape[:-1], 16)
    out[..., E123] = w
    out[..., E023] = -p[..., 0]
    out[..., E013] = p[..., 1]
    out[..., E012] = -p[..., 2]
    return out


def trivector_direction(x: torch.Tensor) -> torch.Tensor:
    """The (x, y, z) slots of a trivector, not divided by e123: (..., 16) -> (..., 3)."""
    return torch.stack([-x[..., E023], x[..., E013], -x[..., E012]], dim=-1)


def extract_point(x: torch.Tensor, *, eps: float = 1e-6) -> torch.Tensor:
    """(..., 16) -> (..., 3): trivector slots divided by e123 (|e123| clamped to >= eps, sign kept)."""
    w = x[..., E123]
    w = torch.where(w >= 0, w.clamp(min=eps), w.clamp(max=-eps))
    return trivector_direction(x) / w.unsqueeze(-1)


# --- versors: the action of E(3) on multivectors (used by tests and equivariance checks) ---

def plane_vector(normal: torch.Tensor, offset: torch.Tensor | float = 0.0) -> torch.Tensor:
    """Grade-1 multivector n1 e1 + n2 e2 + n3 e3 + d e0 (a plane; as a versor, the reflection in it)."""
    out = normal.new_zeros(*normal.shape[:-1], 16)
    out[..., 2:5] = normal
    out[..., 1] = offset
    return out


def translator(t: torch.Tensor) -> torch.Tensor:
    """Even versor of the translation by t (..., 3): 1 - (t1 e01 + t2 e02 + t3 e03) / 2."""
    out = t.new_zeros(*t.shape[:-1], 16)
    out[..., 0] = 1.0
    out[..., 5:8] = -0.5 * t
    return out


def householder_normals(R: torch.Tensor) -> list[torch.Tensor]:
    """Unit normals n_1..n_k (k <= 4) with R = H(n_1) ... H(n_k), H(n) = I - 2 n nᵀ, for one R (3, 3)."""
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
    if M[2, 2] < 0:  # remaining -1 on the last axis
        normals.append(eye[:, 2])
    return normals


def versor(R: torch.Tensor, t: torch.Tensor) -> tuple[torch.Tensor, bool]:
    """PGA versor of x ↦ R x + t for one element (R (3,3), t (3,)) and whether it is odd."""
    u = translator(t)
    normals = householder_normals(R)
    for n in normals:
        u = geometric_product(u, plane_vector(n))
    return u, len(normals) % 2 == 1


def act(u: torch.Tensor, x: torch.Tensor, odd: bool | torch.Tensor) -> torch.Tensor:
    """ρ_u(x) = u x u⁻¹ (even u) or u x̂ u⁻¹ (odd u); u (..., 16) broadcasts against x (..., 16)."""
    inverse = reverse(u) / geometric_product(u, reverse(u))[..., :1]
    odd = torch.as_tensor(odd, device=x.device)
    if odd.ndim:
        odd = odd.reshape(*odd.shape, *([1] * (x.ndim - odd.ndim)))
    x = torch.where(odd, grade_involution(x), x)
    return geometric_product(geometric_product(u, x), inverse)


def versors(R: torch.Tensor, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Batched `versor`: R (B, 3, 3), t (B, 3) -> u (B, 16), odd (B,) bool."""
    pairs = [versor(R[b], t[b]) for b in range(R.shape[0])]
    return torch.stack([u for u, _ in pairs]), torch.tensor([odd for _, odd in pairs])
