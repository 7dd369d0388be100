"""Elementwise kernel of GATr's MLP core: geometric product and reference join, gated by GELU.

Works on component-major (16, channels, tokens) tensors, term by term over the non-zero table entries
(192 for the geometric product, 81 for the join; gathered at once for small tensors): no 16×16×16
contraction, no matmul.
"""

from __future__ import annotations

from functools import lru_cache

import torch
import torch.nn.functional as F

from study.models.gatr.primitives import bilinear_terms


# the tables' terms as plain constants, read at import: dynamo reads them without tracing the tables' construction
_TERMS = {name: bilinear_terms(name) for name in ("gp", "join")}
SMALL_SLAB = 1 << 10   # elements of one component slab (C·N) up to which the gathered path runs (see accumulate)


def accumulate(out: torch.Tensor, terms, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """out[o] = Σ sign · a[p] · b[q] over terms (o, p, q, sign), in place; rows without a term are zeroed.

    Small slabs (C·N ≤ SMALL_SLAB: small models, small batches) gather every term at once and sum them
    with one `index_add_` (a few ops instead of one per term: per-op overhead dominates there); larger
    ones multiply term by term, the first touch of a row without a zero fill, later ones a fused
    multiply-add. Both are elementwise: no matmul, so no FLOPs in the budget's convention."""
    if a[0].numel() <= SMALL_SLAB:
        o, p, q, sign = _term_index(tuple(terms), a.device, a.dtype)
        products = a.index_select(0, p) * b.index_select(0, q)      # (T, C, N)
        products.mul_(sign.view(-1, *([1] * (a.dim() - 1))))
        return out.zero_().index_add_(0, o, products)
    touched = set()
    for o, p, q, sign in terms:
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


@lru_cache(maxsize=64)
def _term_index(terms: tuple, device: torch.device, dtype: torch.dtype):
    """The terms as index tensors (o, p, q) and signs on `device`."""
    o, p, q, sign = zip(*terms)
    index = [torch.tensor(v, dtype=torch.long, device=device) for v in (o, p, q)]
    return (*index, torch.tensor(sign, dtype=dtype, device=device))


def _first_factor_terms(terms):
    """Terms of dz/dx: (j, i, k, s) for z_i = Σ s x_j y_k."""
    return tuple((j, i, k, s) for i, j, k, s in terms)


def _second_factor_terms(terms):
    """Terms of dz/dy: (k, i, j, s) for z_i = Σ s x_j y_k."""
    return tuple((k, i, j, s) for i, j, k, s in terms)


class GatedBilinear(torch.autograd.Function):
    """h (16, 4C, N) = [a, b, c, d] -> y · gelu(<y>_0) with y = [a b, ref · (c ∨ d)] (16, 2C, N).

    One output buffer, no split/cat and no zero-filled slice backwards; `ref` (1, 1, N) is a
    constant (no gradient)."""

    @staticmethod
    def forward(ctx, h: torch.Tensor, ref: torch.Tensor, channels: int) -> torch.Tensor:
        a, b, c, d = h.split(channels, dim=1)                        # (16, C, N) views
        y = h.new_empty(16, 2 * channels, h.shape[2])                # (16, 2C, N)
        accumulate(y[:, :channels], bilinear_terms("gp"), a, b)
        accumulate(y[:, channels:], bilinear_terms("join"), c, d).mul_(ref)
        gate = F.gelu(y[0])                                          # (2C, N)
        ctx.save_for_backward(h, ref, y)
        ctx.channels = channels
        return y * gate

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        h, ref, y = ctx.saved_tensors
        ch = ctx.channels
        y0 = y[0]                                                    # (2C, N)
        gy = grad * F.gelu(y0)                                       # (16, 2C, N)
        gy[0] += torch.ops.aten.gelu_backward((grad * y).sum(0), y0)
        gy[:, ch:].mul_(ref)
        a, b, c, d = h.split(ch, dim=1)                              # (16, C, N) views
        gh = torch.empty_like(h)                                     # (16, 4C, N)
        for name, lo, x, z in (("gp", 0, a, b), ("join", 2 * ch, c, d)):
            g = gy[:, :ch] if name == "gp" else gy[:, ch:]
            terms = bilinear_terms(name)
            accumulate(gh[:, lo : lo + ch], _first_factor_terms(terms), g, z)
            accumulate(gh[:, lo + ch : lo + 2 * ch], _second_factor_terms(terms), g, x)
        return gh, None, None


def gated_bilinear(h: torch.Tensor, ref: torch.Tensor, channels: int) -> torch.Tensor:
    """[a b, ref (c ∨ d)] gated by GELU of its grade 0, for h (16, 4C, N) = [a, b, c, d] -> (16, 2C, N)."""
    if torch.compiler.is_compiling():
        return gated_bilinear_traced(h, ref, channels)
    return GatedBilinear.apply(h, ref, channels)


def gated_bilinear_traced(h: torch.Tensor, ref: torch.Tensor, channels: int) -> torch.Tensor:
    """`gated_bilinear` out of place, one product per table term: what torch.compile traces (its backward
    derived by AOT autograd, the terms fused into a few kernels; the in-place Function defeats its alias replay)."""
    a, b, c, d = h.split(channels, dim=1)                            # (16, C, N)
    y = torch.cat([_traced_products(_TERMS["gp"], a, b),
                   _traced_products(_TERMS["join"], c, d) * ref], dim=1)     # (16, 2C, N)
    return y * F.gelu(y[0])


def _traced_products(terms, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """out[o] = Σ sign · a[p] · b[q] over terms (o, p, q, sign), as a stack of 16 sums."""
    rows: list = [None] * 16
    for o, p, q, sign in terms:
        term = a[p] * b[q] if sign == 1.0 else a[p] * b[q] * sign
        rows[o] = term if rows[o] is None else rows[o] + term
    zero = torch.zeros_like(a[0])
    return torch.stack([zero if r is None else r for r in rows])
