"""Geometric Algebra Transformer (GATr) in G(3,0,1): layers, network and the benchmark adapter.

Shape: mv_channels C, s_channels S, depth. Heads = max(1, C // 8); C and S must be divisible by it.
Executed work, as counted by `forward_flops` (2·m·n·k per matrix product, per token):
  EquiLinear(in→out, in_s→out_s): one dense (16·in × 16·out) matmul whose weight is placed (by
  indexing, no arithmetic) from W (8, in, out) (grade projections 1..4, x ↦ e0<x>_g), plus one
  (in + in_s) × (out + out_s) matmul on [<x>_0, scalars] (it holds the grade-0 projection, the
  scalar mixing and the biases, which act on grade 0 only).
  Attention: one scaled_dot_product_attention over [8 non-e0 components per mv channel,
  5 distance features per mv channel, scalars] (values: all 16 components and scalars). Geometric product and join are elementwise
  (192 resp. 81 fused multiply-adds per channel, <1% of the matmul work), so they count 0 like all
  elementwise work. (Contracting with the 16×16×16 table as a matmul would do ~20× more arithmetic
  on zeros, and its backward would cost 1× instead of 2× forward, breaking C = 3·F_fwd.)
Reflections: trivector points flip sign under the Pin action, so inputs are multiplied by each
body's chirality (sign of its marker-frame volume) and the join by the reference's e123 component;
the output displacement is chirality·(direction slots − e123·pos0), exactly E(3)-equivariant.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from study.errors import ConfigError
from study.models import pga

SHAPE_PARAMS = ("mv_channels", "s_channels", "depth")
DEFAULT_SHAPE = {"mv_channels": 8, "s_channels": 16, "depth": 1}
GRANULARITY = {"mv_channels": 8, "s_channels": 8, "depth": 1}  # s must also divide by the heads
MINIMUM = {"mv_channels": 1, "s_channels": 1, "depth": 1}
EQUIVARIANT = True
HEAD_MV = 8
EPS = 1e-6


def heads_for(mv_channels: int) -> int:
    """Attention heads: max(1, mv_channels // 8)."""
    return max(1, mv_channels // HEAD_MV)


def validate(*, mv_channels: int, s_channels: int, depth: int) -> None:
    if mv_channels < 1:
        raise ConfigError(f"gatr: mv_channels must be >= 1, got {mv_channels}")
    if s_channels < 1:
        raise ConfigError(f"gatr: s_channels must be >= 1, got {s_channels}")
    if depth < 1:
        raise ConfigError(f"gatr: depth must be >= 1, got {depth}")
    heads = heads_for(mv_channels)
    if mv_channels % heads:
        raise ConfigError(f"gatr: mv_channels {mv_channels} is not divisible by its {heads} heads "
                          f"(heads = max(1, mv_channels // 8)); use a multiple of 8")
    if s_channels % heads:
        raise ConfigError(f"gatr: s_channels {s_channels} is not divisible by the {heads} heads of "
                          f"mv_channels {mv_channels} (heads = max(1, mv_channels // 8))")


def _placement() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Where the 8 weight maps land in a (16 in-component j, 16 out-component i) block: for each of
    the 24 non-zeros (sorted by map) its j and i, and how many non-zeros each map has."""
    basis = pga.table("basis")                                   # (8, 16 i, 16 j)
    if torch.any((basis != 0).sum(0) > 1) or torch.any(basis < 0):
        raise AssertionError("equivariant basis maps must be disjoint 0/1 patterns")
    a, i, j = basis.nonzero(as_tuple=True)                       # sorted by map a
    return j, i, torch.bincount(a, minlength=8)


class EquiLinear(nn.Module):
    """Pin(3,0,1)-equivariant linear map on multivectors (in_mv channels) and scalars (in_s).

    Layouts: "channel" = (N, C, 16) flattened to (N, 16·C); "component" = (16, C, N) flattened to
    (16·C, N) (what the elementwise bilinear wants). The dense (16·in × 16·out) weight is placed
    from W (8, in, out) by indexing (no arithmetic) and applied in one matmul."""

    def __init__(self, in_mv: int, out_mv: int, in_s: int, out_s: int, *, grade0: bool = True,
                 in_layout: str = "channel", out_layout: str = "channel"):
        super().__init__()
        self.in_mv, self.out_mv, self.out_s, self.grade0 = in_mv, out_mv, out_s, grade0
        self.in_layout, self.out_layout = in_layout, out_layout
        self.weight = nn.Parameter(torch.randn(8, in_mv, out_mv) / math.sqrt(in_mv))
        j, i, counts = _placement()
        self.register_buffer("rows", j, persistent=False)
        self.register_buffer("cols", i, persistent=False)
        self.counts = tuple(int(n) for n in counts)
        self.scalar = nn.Linear(in_mv + in_s, out_mv + out_s) if grade0 else None

    def dense(self) -> torch.Tensor:
        """The (16·in, 16·out) weight in this layer's layouts."""
        values = torch.cat([self.weight[a : a + 1].expand(n, -1, -1)   # (24, in, out); backward
                            for a, n in enumerate(self.counts)])         # is a sum, no scatter
        block = values.new_zeros(16, 16, self.in_mv, self.out_mv)   # (j, i, c, o)
        block[self.rows, self.cols] = values
        in_dims = (2, 0) if self.in_layout == "channel" else (0, 2)  # rows (c, j) or (j, c)
        out_dims = (3, 1) if self.out_layout == "channel" else (1, 3)
        return block.permute(*in_dims, *out_dims).reshape(16 * self.in_mv, 16 * self.out_mv)

    def forward(self, x: torch.Tensor, s: torch.Tensor | None):
        """x: (…, in, 16) ("channel") or (16, in, N) ("component"); s: (…, in_s) or (N, in_s)."""
        w = self.dense()
        if self.in_layout == "channel":
            lead = x.shape[:-2]
            flat = x.reshape(-1, 16 * self.in_mv)                    # (N, 16 in)
        else:
            lead = x.shape[2:]
            flat = x.reshape(16 * self.in_mv, -1)                    # (16 in, N)
        if self.scalar is None:  # no grade-0/scalar path: the dense matmul alone
            rows = _rows(flat, self.in_layout)                       # (N, 16 in)
            y = rows @ w if self.out_layout == "channel" else w.T @ rows.T
            ys = None
        else:
            s2 = None if s is None else s.reshape(-1, s.shape[-1])
            y, ys = _EquiLinearFn.apply(flat, s2, w, self.scalar.weight, self.scalar.bias, self.in_mv,
                                        self.out_mv, self.in_layout, self.out_layout)
            ys = ys.reshape(*lead, self.out_s)
        if self.out_layout == "channel":
            return y.view(*lead, self.out_mv, 16), ys
        return y.view(16, self.out_mv, *lead), ys


def _rows(flat: torch.Tensor, layout: str) -> torch.Tensor:
    """(N, 16·C) view of a flattened layer input/output in `layout` (no copy)."""
    return flat if layout == "channel" else flat.T


def _grade0(flat: torch.Tensor, layout: str, channels: int) -> torch.Tensor:
    """(N, C) view of the grade-0 components of a flattened (N, 16·C) / (16·C, N) tensor."""
    if layout == "channel":
        return flat.view(flat.shape[0], channels, 16)[:, :, 0]
    return flat[:channels].T


class _EquiLinearFn(torch.autograd.Function):
    """Dense multivector matmul + scalar matmul on [<x>_0, s], added into grade 0 in place.

    Same matmuls as the autograd version, but the backward writes the grade-0 gradients in place
    instead of zero-filled select/slice backwards and view-copy clones."""

    @staticmethod
    def forward(ctx, flat, s, w, ws, bias, in_mv, out_mv, in_layout, out_layout):
        rows = _rows(flat, in_layout)                                # (N, 16 in)
        x0 = _grade0(flat, in_layout, in_mv)                         # (N, in)
        inp = x0 if s is None else torch.cat([x0, s], dim=1)         # (N, in + in_s)
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
        g_rows = _rows(gy, out_layout)                               # (N, 16 out)
        gscal = torch.cat([_grade0(gy, out_layout, out_mv), gys], dim=1)   # (N, out + out_s)
        gflat = gs = None
        g_inp = gscal @ ws                                           # (N, in + in_s)
        if ctx.needs_input_grad[0]:
            gflat = g_rows @ w.T if in_layout == "channel" else w @ g_rows.T
            _grade0(gflat, in_layout, in_mv).add_(g_inp[:, :in_mv])
        if has_s and ctx.needs_input_grad[1]:
            gs = g_inp[:, in_mv:]
        gw = _rows(flat, in_layout).T @ g_rows if ctx.needs_input_grad[2] else None
        gws = gscal.T @ inp if ctx.needs_input_grad[3] else None
        gbias = gscal.sum(0) if ctx.needs_input_grad[4] else None
        return gflat, gs, gw, gws, gbias, None, None, None, None


def equi_layer_norm(x: torch.Tensor, s: torch.Tensor):
    """Multivectors / sqrt(mean over channels of <x, x>); scalars: plain layer norm (no affine)."""
    norm = pga.inner_product(x, x).mean(-1, keepdim=True)            # (…, 1)
    return x * torch.rsqrt(norm + EPS).unsqueeze(-1), F.layer_norm(s, s.shape[-1:])


def _trivector_parts(x: torch.Tensor):
    w = x[..., pga.E123 : pga.E123 + 1]                              # (…, 1) weight
    v = pga.trivector_direction(x)                                   # (…, 3) weighted position
    return w, v, (v * v).sum(-1, keepdim=True)


def distance_query(x: torch.Tensor) -> torch.Tensor:
    """Query features (…, 5); with `distance_key` their dot product is −‖w_k v_q − w_q v_k‖².

    With w = e123 and v the trivector's (x, y, z) slots (a point p of weight w has v = w·p), this is
    −w_q² w_k² ‖p_q − p_k‖²: the pairwise distance that the invariant inner product (blind to every
    e0 component) cannot see. Quadratic in each trivector, so invariant under reflections too."""
    w, v, vv = _trivector_parts(x)
    return torch.cat([w * w, vv, w * v], dim=-1)


def distance_key(x: torch.Tensor) -> torch.Tensor:
    """Key features (…, 5) matching `distance_query`."""
    w, v, vv = _trivector_parts(x)
    return torch.cat([-vv, -(w * w), 2.0 * w * v], dim=-1)


class Attention(nn.Module):
    """Multi-head geometric attention: logits = Σ_c (<q̃_c k_c>_0 − ‖distance of their points‖²) + q_s·k_s."""

    def __init__(self, mv: int, s: int, heads: int):
        super().__init__()
        self.heads = heads
        self.qkv = EquiLinear(mv, 3 * mv, s, 3 * s)
        self.proj = EquiLinear(mv, mv, s, s)

    def forward(self, x: torch.Tensor, s: torch.Tensor):             # (B, K, C, 16), (B, K, S)
        b, k, c, _ = x.shape
        h, sc = self.heads, s.shape[-1]
        qkv, qkv_s = self.qkv(x, s)                                  # (B, K, 3C, 16), (B, K, 3S)
        mv = qkv.view(b, k, 3, h, c // h, 16).permute(2, 0, 3, 1, 4, 5)   # (3, B, H, K, C/H, 16)
        sv = qkv_s.view(b, k, 3, h, sc // h).permute(2, 0, 3, 1, 4)        # (3, B, H, K, S/H)
        idx = list(pga.NON_E0)
        dq, dk = distance_query(mv[0]), distance_key(mv[1])         # (B, H, K, C/H, 5) each
        q = torch.cat([mv[0][..., idx].flatten(-2), dq.flatten(-2), sv[0]], -1)   # (B, H, K, 13C/H + S/H)
        key = torch.cat([mv[1][..., idx].flatten(-2), dk.flatten(-2), sv[1]], -1)
        v = torch.cat([mv[2].flatten(-2), sv[2]], -1)                # (B, H, K, 16C/H + S/H)
        out = F.scaled_dot_product_attention(q, key, v)              # (B, H, K, 16C/H + S/H)
        out = out.transpose(1, 2)                                    # (B, K, H, ...)
        y = out[..., : 16 * (c // h)].reshape(b, k, c, 16)
        ys = out[..., 16 * (c // h) :].reshape(b, k, sc)
        return self.proj(y, ys)


class GeometricMLP(nn.Module):
    """Geometric bilinear (geometric product and reference join of projections) -> gated GELU -> linear.

    Works component-major inside ((16, channels, tokens)), so that the elementwise products read
    contiguous (channels × tokens) slices."""

    def __init__(self, mv: int, s: int):
        super().__init__()
        self.mv = mv
        self.inp = EquiLinear(mv, 4 * mv, s, 2 * s, out_layout="component")
        self.out = EquiLinear(2 * mv, mv, 2 * s, s, in_layout="component")

    def hidden(self, x: torch.Tensor, s: torch.Tensor, reference: torch.Tensor):
        """Gated bilinear features: (16, 2C, B, K) component-major multivectors, (B, K, 2S) scalars."""
        lead = x.shape[:-2]
        h, hs = self.inp(x, s)                                       # (16, 4C, B, K), (B, K, 2S)
        ref = reference[..., 0, pga.E123].expand(*lead).reshape(1, 1, -1)   # (1, 1, B·K)
        y = pga.gated_bilinear(h.reshape(16, 4 * self.mv, -1), ref, self.mv)  # (16, 2C, B·K)
        return y.view(16, 2 * self.mv, *lead), F.gelu(hs)

    def forward(self, x: torch.Tensor, s: torch.Tensor, reference: torch.Tensor):
        """x (B, K, C, 16), s (B, K, S), reference (B, 1, 1, 16) -> like x and s."""
        return self.out(*self.hidden(x, s, reference))


class Block(nn.Module):
    """Pre-norm: x + Attn(LN x); x + MLP(LN x) (multivectors and scalars alike)."""

    def __init__(self, mv: int, s: int, heads: int):
        super().__init__()
        self.attention = Attention(mv, s, heads)
        self.mlp = GeometricMLP(mv, s)

    def forward(self, x, s, reference):
        dx, ds = self.attention(*equi_layer_norm(x, s))
        x, s = x + dx, s + ds
        dx, ds = self.mlp(*equi_layer_norm(x, s), reference)
        return x + dx, s + ds


def chirality(pos0: torch.Tensor) -> torch.Tensor:
    """±1 per body (B, K): sign of the volume spanned by markers 1..3 around marker 0 (+1 if M < 4).

    Under the Pin action trivector points are pseudo (they flip sign under reflections), and so
    is this sign: their product is an exactly E(3)-equivariant embedding."""
    if pos0.shape[-2] < 4:
        return pos0.new_ones(pos0.shape[:-2])
    arms = pos0[..., 1:4, :] - pos0[..., :1, :]                      # (B, K, 3, 3)
    vol = torch.linalg.det(arms)
    return torch.where(vol >= 0, 1.0, -1.0).to(pos0.dtype)


class GATr(nn.Module):
    """(pos0, vel0, props) -> predicted posT; tokens = bodies, mv channels = marker points and velocities."""

    def __init__(self, *, mv_channels: int, s_channels: int, depth: int, markers: int, props: int):
        super().__init__()
        heads = heads_for(mv_channels)
        self.embed = EquiLinear(2 * markers, mv_channels, props, s_channels)
        self.blocks = nn.ModuleList(Block(mv_channels, s_channels, heads) for _ in range(depth))
        self.head = EquiLinear(mv_channels, markers, s_channels, 0, grade0=False)

    def forward(self, pos0: torch.Tensor, vel0: torch.Tensor, props: torch.Tensor) -> torch.Tensor:
        chi = chirality(pos0)[..., None, None]                       # (B, K, 1, 1)
        x = chi * torch.cat([pga.embed_point(pos0), pga.embed_direction(vel0)], dim=-2)  # (B, K, 2M, 16)
        reference = x.mean(dim=(1, 2), keepdim=True)                 # (B, 1, 1, 16)
        x, s = self.embed(x, props)                                  # (B, K, C, 16), (B, K, S)
        for block in self.blocks:
            x, s = block(x, s, reference)
        y, _ = self.head(*equi_layer_norm(x, s))                     # (B, K, M, 16)
        # translation-invariant displacement: direction slots minus e123 · pos0, chirality restored
        disp = chi * (pga.trivector_direction(y) - y[..., pga.E123 : pga.E123 + 1] * pos0)
        return pos0 + disp


def build(*, mv_channels: int, s_channels: int, depth: int, markers: int, props: int) -> GATr:
    validate(mv_channels=mv_channels, s_channels=s_channels, depth=depth)
    return GATr(mv_channels=mv_channels, s_channels=s_channels, depth=depth, markers=markers, props=props)


def _linear_flops(in_mv: int, out_mv: int, in_s: int, out_s: int, *, grade0: bool = True) -> int:
    dense = 2 * (16 * in_mv) * (16 * out_mv)
    return dense + (2 * (in_mv + in_s) * (out_mv + out_s) if grade0 else 0)


def _linear_params(in_mv: int, out_mv: int, in_s: int, out_s: int, *, grade0: bool = True) -> int:
    return 8 * out_mv * in_mv + ((in_mv + in_s + 1) * (out_mv + out_s) if grade0 else 0)


def _layers(c: int, s: int, depth: int, markers: int, props: int):
    """(in_mv, out_mv, in_s, out_s, grade0) of every EquiLinear, per token."""
    block = [(c, 3 * c, s, 3 * s, True), (c, c, s, s, True),
             (c, 4 * c, s, 2 * s, True), (2 * c, c, 2 * s, s, True)]
    return [(2 * markers, c, props, s, True)] + depth * block + [(c, markers, s, 0, False)]


def forward_flops(*, mv_channels: int, s_channels: int, depth: int, bodies: int, markers: int,
                  props: int) -> int:
    """Matmul FLOPs of one forward pass over one scene (see the module docstring)."""
    c, s, k = mv_channels, s_channels, bodies
    linear = sum(_linear_flops(*l[:4], grade0=l[4]) for l in _layers(c, s, depth, markers, props))
    attention = 2 * k * k * (13 * c + s) + 2 * k * k * (16 * c + s)  # scores (8 + 5 distance dims per channel) + weighted sum
    return k * linear + depth * attention


def param_count(*, mv_channels: int, s_channels: int, depth: int, markers: int, props: int) -> int:
    layers = _layers(mv_channels, s_channels, depth, markers, props)
    return sum(_linear_params(*l[:4], grade0=l[4]) for l in layers)
