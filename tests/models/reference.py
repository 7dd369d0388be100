"""Slow, independent re-computations of GATr's layers from their equations (for tests only).

Each takes a layer's parameters and recomputes its output the naive way: the 9-map basis sum for
EquiLinear, a per-token loop for attention, the table products for the MLP. Agreement with the
fast layers checks their values, not just their symmetry.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from study.models.gatr.layers import Attention, Block, EquiLinear, GeometricMLP
from study.models.gatr.nets import GATr
from study.models.gatr.primitives import (E012, E013, E023, E123, NON_E0, embed_direction, embed_point,
                                          equi_join, geometric_product, linear_basis)


def basis_weights(layer: EquiLinear) -> torch.Tensor:
    """The layer's maps as W (out, in, 9) over the 9-map basis (map 0, <x>_0, from the scalar path)."""
    w = torch.zeros(layer.out_mv, layer.in_mv, 9, dtype=layer.weight.dtype)
    w[..., 1:] = layer.weight.detach().permute(2, 1, 0)               # (out, in, 8)
    if layer.scalar is not None:
        w[..., 0] = layer.scalar.weight.detach()[: layer.out_mv, : layer.in_mv]
    return w


def equivariant_linear(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """y_o = Σ_{c,a} W[o, c, a] B_a x_c: x (..., in, 16), W (out, in, 9) -> (..., out, 16)."""
    basis = linear_basis(dtype=x.dtype)                               # (9, 16, 16)
    return torch.einsum("oca,aij,...cj->...oi", weight, basis, x)


def linear(layer: EquiLinear, x: torch.Tensor, s: torch.Tensor | None):
    """EquiLinear from its equation: basis sum on multivectors, plus scalars and biases into grade 0;
    scalar outputs from [<x>_0, s]."""
    y = equivariant_linear(x, basis_weights(layer))                   # (..., out, 16)
    if layer.scalar is None:
        return y, None
    out = layer.out_mv
    ws, bias = layer.scalar.weight.detach(), layer.scalar.bias.detach()
    y = y.clone()
    y[..., 0] += bias[:out]
    if s is not None:
        y[..., 0] += s @ ws[:out, layer.in_mv :].T
    inp = x[..., 0] if s is None else torch.cat([x[..., 0], s], dim=-1)   # (..., in + in_s)
    return y, inp @ ws[out:].T + bias[out:]


def layer_norm(x: torch.Tensor, s: torch.Tensor, eps: float = 1e-6):
    """x / sqrt(mean over channels of Σ_{non-e0} x_i² + eps); s: standardised over its last axis."""
    sq = (x[..., list(NON_E0)] ** 2).sum(-1).mean(-1)                 # (...,)
    mean, var = s.mean(-1, keepdim=True), s.var(-1, unbiased=False, keepdim=True)
    return x / torch.sqrt(sq + eps)[..., None, None], (s - mean) / torch.sqrt(var + 1e-5)


def _point_parts(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """e123 weight w and the three other trivector slots (unsigned: signs cancel in a squared norm)."""
    return x[E123], torch.stack([x[E023], x[E013], x[E012]])


def attention_core(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, qs: torch.Tensor, ks: torch.Tensor,
                   vs: torch.Tensor, heads: int):
    """Per-token loop: q, k, v (B, K, C, 16), qs, ks, vs (B, K, S) -> (B, K, C, 16), (B, K, S).

    logit(i, j) = Σ_c [Σ_{non-e0} q_ci k_cj − ‖w_k v_q − w_q v_k‖²] + Σ q_s k_s, over each head's
    channels, scaled by 1/sqrt(13·C/H + S/H); softmax over j; weighted sum of v and vs."""
    b_, n, c, _ = q.shape
    sc = qs.shape[-1]
    ch, sh = c // heads, sc // heads
    scale = 1.0 / math.sqrt(13 * ch + sh)
    out, outs = torch.zeros_like(v), torch.zeros_like(vs)
    for b in range(b_):
        for h in range(heads):
            cs, ss = range(h * ch, (h + 1) * ch), slice(h * sh, (h + 1) * sh)
            for i in range(n):
                logits = torch.zeros(n, dtype=q.dtype)
                for j in range(n):
                    total = (qs[b, i, ss] * ks[b, j, ss]).sum()
                    for ci in cs:
                        total = total + sum(q[b, i, ci, m] * k[b, j, ci, m] for m in NON_E0)
                        wq, pq = _point_parts(q[b, i, ci])
                        wk, pk = _point_parts(k[b, j, ci])
                        total = total - ((wk * pq - wq * pk) ** 2).sum()
                    logits[j] = total * scale
                weights = torch.softmax(logits, dim=0)                # (K,)
                for j in range(n):
                    out[b, i, list(cs)] += weights[j] * v[b, j, list(cs)]
                    outs[b, i, ss] += weights[j] * vs[b, j, ss]
    return out, outs


def attention(layer: Attention, x: torch.Tensor, s: torch.Tensor):
    """The attention layer: reference qkv, per-token attention, reference output projection."""
    c, sc = x.shape[-2], s.shape[-1]
    qkv, qkv_s = linear(layer.qkv, x, s)                              # (B, K, 3C, 16), (B, K, 3S)
    q, k, v = qkv.split(c, dim=-2)
    qs, ks, vs = qkv_s.split(sc, dim=-1)
    return linear(layer.proj, *attention_core(q, k, v, qs, ks, vs, layer.heads))


def mlp(layer: GeometricMLP, x: torch.Tensor, s: torch.Tensor, reference: torch.Tensor):
    """[a b, ref·(a' ∨ b')] by the table products, gated by GELU of grade 0, then the output linear."""
    c = layer.mv
    h, hs = linear(layer.inp, x, s)                                   # (B, K, 4C, 16), (B, K, 2S)
    a, b, cc, d = h.split(c, dim=-2)
    y = torch.cat([geometric_product(a, b), equi_join(cc, d, reference)], dim=-2)   # (B, K, 2C, 16)
    y = y * F.gelu(y[..., :1])
    return linear(layer.out, y, F.gelu(hs))


def block(layer: Block, x: torch.Tensor, s: torch.Tensor, reference: torch.Tensor):
    """Pre-norm residual attention then MLP."""
    dx, ds = attention(layer.attention, *layer_norm(x, s))
    x, s = x + dx, s + ds
    dx, ds = mlp(layer.mlp, *layer_norm(x, s), reference)
    return x + dx, s + ds


def gatr(model: GATr, pos0: torch.Tensor, vel0: torch.Tensor, props: torch.Tensor) -> torch.Tensor:
    """The whole network from the references, with its own chirality and decoding written out."""
    if pos0.shape[-2] >= 4:
        arms = pos0[..., 1:4, :] - pos0[..., :1, :]                  # (B, K, 3, 3)
        chi = torch.linalg.det(arms).ge(0).to(pos0.dtype) * 2 - 1    # (B, K)
    else:
        chi = pos0.new_ones(pos0.shape[:2])
    x = chi[..., None, None] * torch.cat([embed_point(pos0), embed_direction(vel0)], dim=-2)
    reference = x.mean(dim=(1, 2), keepdim=True)                      # (B, 1, 1, 16)
    x, s = linear(model.embed, x, props)
    for layer in model.blocks:
        x, s = block(layer, x, s, reference)
    y, _ = linear(model.head, *layer_norm(x, s))                      # (B, K, M, 16)
    direction = torch.stack([-y[..., E023], y[..., E013], -y[..., E012]], dim=-1)
    return pos0 + chi[..., None, None] * (direction - y[..., E123 : E123 + 1] * pos0)
