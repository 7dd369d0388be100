"""EquiLinear: the Pin(3,0,1)-equivariant linear map on multivector and scalar channels.

y_o = Σ_{c,a} W[o,c,a] B_a x_c over the 9 basis maps. Executed as one dense (16·in × 16·out) matmul
whose weight is placed by indexing (no arithmetic) from W (8, in, out) for the maps other than
<x>_0, plus one (in + in_s) × (out + out_s) matmul on [<x>_0, scalars] that holds the grade-0
projection, the scalar mixing and the biases (which act on grade 0 only).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from study.models.gatr.primitives import linear_basis


def _placement() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Where the 8 dense maps land in a (16 in-component j, 16 out-component i) block: the j and i of
    each of their 24 non-zeros (sorted by map) and how many non-zeros each map has."""
    basis = linear_basis()[1:]                                   # (8, 16 i, 16 j): all but <x>_0
    if torch.any((basis != 0).sum(0) > 1) or torch.any(basis < 0):
        raise ValueError("equivariant basis maps must be disjoint 0/1 patterns")
    a, i, j = basis.nonzero(as_tuple=True)                       # sorted by map a
    return j, i, torch.bincount(a, minlength=8)


def _rows(flat: torch.Tensor, layout: str) -> torch.Tensor:
    """(N, 16·C) view of a flattened layer input/output in `layout` (no copy)."""
    return flat if layout == "channel" else flat.T


def _grade0(flat: torch.Tensor, layout: str, channels: int) -> torch.Tensor:
    """(N, C) view of the grade-0 components of a flattened (N, 16·C) / (16·C, N) tensor."""
    if layout == "channel":
        return flat.view(flat.shape[0], channels, 16)[:, :, 0]
    return flat[:channels].T


def _inputs(flat: torch.Tensor, s: torch.Tensor | None, in_mv: int, layout: str):
    """The dense matmul's rows (N, 16·in) and the scalar path's input [<x>_0, s] (N, in + in_s)."""
    x0 = _grade0(flat, layout, in_mv)                                # (N, in)
    return _rows(flat, layout), (x0 if s is None else torch.cat([x0, s], dim=1))


class EquiLinear(nn.Module):
    """Equivariant linear map from (in_mv, in_s) to (out_mv, out_s) channels.

    Layouts: "channel" = (…, C, 16) flattened to (N, 16·C); "component" = (16, C, …) flattened to
    (16·C, N) (what the elementwise bilinear kernel wants). Without `grade0` there is no scalar path
    (no <x>_0 map, no scalars, no bias): the dense matmul alone."""

    def __init__(self, in_mv: int, out_mv: int, in_s: int, out_s: int, *, grade0: bool = True,
                 in_layout: str = "channel", out_layout: str = "channel"):
        super().__init__()
        self.in_mv, self.out_mv, self.out_s, self.grade0 = in_mv, out_mv, out_s, grade0
        self.in_layout, self.out_layout = in_layout, out_layout
        self.weight = nn.Parameter(torch.randn(8, in_mv, out_mv) / math.sqrt(in_mv))
        j, i, counts = _placement()
        self.register_buffer("rows", j, persistent=False)
        self.register_buffer("cols", i, persistent=False)
        maps = torch.repeat_interleave(torch.arange(8), counts)     # (24,) the map of each non-zero
        self.register_buffer("maps", maps, persistent=False)
        self.scalar = nn.Linear(in_mv + in_s, out_mv + out_s) if grade0 else None

    def zero_(self) -> "EquiLinear":
        """Make this the zero map (multivector weights, scalar weights, biases), in place: how a residual
        branch's last layer starts, so that every block is the identity at initialisation."""
        with torch.no_grad():
            self.weight.zero_()
            if self.scalar is not None:
                self.scalar.weight.zero_()
                self.scalar.bias.zero_()
        return self

    def dense(self) -> torch.Tensor:
        """The (16·in, 16·out) weight in this layer's layouts (indexing only: 0 FLOPs)."""
        # one op (its backward one index_add) where a slice and an expand per map and a cat took 17
        values = self.weight.index_select(0, self.maps)              # (24, in, out)
        block = values.new_zeros(16, 16, self.in_mv, self.out_mv)   # (j, i, in, out)
        block[self.rows, self.cols] = values
        in_dims = (2, 0) if self.in_layout == "channel" else (0, 2)  # rows (c, j) or (j, c)
        out_dims = (3, 1) if self.out_layout == "channel" else (1, 3)
        return block.permute(*in_dims, *out_dims).reshape(16 * self.in_mv, 16 * self.out_mv)

    def forward(self, x: torch.Tensor, s: torch.Tensor | None):
        """x (…, in, 16) ("channel") or (16, in, …) ("component"); s (…, in_s) -> like x with out, (…, out_s)."""
        w = self.dense()                                             # (16 in, 16 out)
        if self.in_layout == "channel":
            lead = x.shape[:-2]
            flat = x.reshape(-1, 16 * self.in_mv)                    # (N, 16 in)
        else:
            lead = x.shape[2:]
            flat = x.reshape(16 * self.in_mv, -1)                    # (16 in, N)
        if self.scalar is None:
            rows = _rows(flat, self.in_layout)                       # (N, 16 in)
            y = rows @ w if self.out_layout == "channel" else w.T @ rows.T
            ys = None
        else:
            s2 = None if s is None else s.reshape(-1, s.shape[-1])   # (N, in_s)
            # torch.compile traces the out-of-place form and derives its backward (the in-place Function
            # writes into views, which AOT autograd's alias replay cannot follow)
            affine = equi_linear_traced if torch.compiler.is_compiling() else EquiLinearFunction.apply
            y, ys = affine(flat, s2, w, self.scalar.weight, self.scalar.bias,
                           self.in_mv, self.out_mv, self.in_layout, self.out_layout)
            ys = ys.reshape(*lead, self.out_s)                       # (…, out_s)
        if self.out_layout == "channel":
            return y.view(*lead, self.out_mv, 16), ys                # (…, out, 16)
        return y.view(16, self.out_mv, *lead), ys                    # (16, out, …)


class EquiLinearFunction(torch.autograd.Function):
    """Dense multivector matmul + scalar matmul on [<x>_0, s], added into grade 0 in place.

    The same matmuls as autograd would run, but the backward writes the grade-0 gradients in place
    (no zero-filled select/slice backwards) and computes only the gradients that are needed: for
    a first layer (inputs without gradient) it runs the two weight-gradient matmuls alone."""

    @staticmethod
    def forward(ctx, flat, s, w, ws, bias, in_mv, out_mv, in_layout, out_layout):
        rows, inp = _inputs(flat, s, in_mv, in_layout)               # (N, 16 in), (N, in + in_s)
        y = rows @ w if out_layout == "channel" else w.T @ rows.T   # (N, 16 out) / (16 out, N)
        ys = torch.addmm(bias, inp, ws.T)                            # (N, out + out_s)
        _grade0(y, out_layout, out_mv).add_(ys[:, :out_mv])
        ctx.save_for_backward(flat, inp, w, ws)
        ctx.meta = (in_mv, out_mv, in_layout, out_layout, s is not None)
        return y, ys[:, out_mv:].contiguous()

    @staticmethod
    def backward(ctx, gy, gys):
        flat, inp, w, ws = ctx.saved_tensors
        in_mv, out_mv, in_layout, out_layout, has_s = ctx.meta
        need_x = ctx.needs_input_grad[0]
        need_s = has_s and ctx.needs_input_grad[1]
        g_rows = _rows(gy, out_layout)                               # (N, 16 out)
        gscal = torch.cat([_grade0(gy, out_layout, out_mv), gys], dim=1)   # (N, out + out_s)
        gflat = gs = None
        g_inp = gscal @ ws if need_x or need_s else None             # (N, in + in_s)
        if need_x:
            gflat = g_rows @ w.T if in_layout == "channel" else w @ g_rows.T
            _grade0(gflat, in_layout, in_mv).add_(g_inp[:, :in_mv])
        if need_s:
            gs = g_inp[:, in_mv:]
        gw = _rows(flat, in_layout).T @ g_rows if ctx.needs_input_grad[2] else None
        gws = gscal.T @ inp if ctx.needs_input_grad[3] else None
        gbias = gscal.sum(0) if ctx.needs_input_grad[4] else None
        return gflat, gs, gw, gws, gbias, None, None, None, None


def equi_linear_traced(flat, s, w, ws, bias, in_mv, out_mv, in_layout, out_layout):
    """`EquiLinearFunction`'s forward without in-place writes: what torch.compile traces and differentiates."""
    rows, inp = _inputs(flat, s, in_mv, in_layout)                   # (N, 16 in), (N, in + in_s)
    ys = torch.addmm(bias, inp, ws.T)                                # (N, out + out_s)
    if out_layout == "channel":
        y = (rows @ w).view(rows.shape[0], out_mv, 16)               # (N, out, 16)
        y = torch.cat([y[:, :, :1] + ys[:, :out_mv, None], y[:, :, 1:]], dim=2)
        y = y.view(rows.shape[0], 16 * out_mv)                       # (N, 16 out)
    else:
        y = w.T @ rows.T                                             # (16 out, N)
        y = torch.cat([y[:out_mv] + ys[:, :out_mv].T, y[out_mv:]], dim=0)
    return y, ys[:, out_mv:]
