"""Multi-head geometric attention over tokens of multivector and scalar channels.

Logits = Σ_c (<q̃_c k_c>_0 − w_q² w_k² ‖p_q − p_k‖²) + q_s·k_s, scaled by 1/sqrt(feature dim), in
one `scaled_dot_product_attention` over the concatenated features: 8 non-e0 components and 5
distance features per multivector channel, then the scalars; values are all 16 components and scalars.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from study.models.gatr.layers.linear import EquiLinear
from study.models.gatr.primitives import NON_E0, distance_key, distance_query


class Attention(nn.Module):
    """qkv EquiLinear -> geometric attention per head -> output EquiLinear (`normalise_distance`: the distance
    features of normalised points, see primitives/distance.py; `distance_gain`: a learned factor exp(g_h) per
    head on the distance logits, g_h = 0 at the start, an invariant scalar)."""

    def __init__(self, mv: int, s: int, heads: int, *, normalise_distance: bool = False,
                 distance_gain: bool = False):
        super().__init__()
        self.heads = heads
        self.normalise_distance = normalise_distance
        self.distance_gain = nn.Parameter(torch.zeros(heads)) if distance_gain else None
        self.qkv = EquiLinear(mv, 3 * mv, s, 3 * s)
        self.proj = EquiLinear(mv, mv, s, s)

    def forward(self, x: torch.Tensor, s: torch.Tensor):             # (B, K, C, 16), (B, K, S)
        b, k, c, _ = x.shape
        h, sc = self.heads, s.shape[-1]
        qkv, qkv_s = self.qkv(x, s)                                  # (B, K, 3C, 16), (B, K, 3S)
        mv = qkv.view(b, k, 3, h, c // h, 16).permute(2, 0, 3, 1, 4, 5)   # (3, B, H, K, C/H, 16)
        sv = qkv_s.view(b, k, 3, h, sc // h).permute(2, 0, 3, 1, 4)        # (3, B, H, K, S/H)
        idx = list(NON_E0)
        norm = self.normalise_distance
        dq, dk = distance_query(mv[0], normalise=norm), distance_key(mv[1], normalise=norm)   # (B, H, K, C/H, 5) each
        if self.distance_gain is not None:
            dk = dk * self.distance_gain.exp()[:, None, None, None]  # (B, H, K, C/H, 5) × (H, 1, 1, 1)
        q = torch.cat([mv[0][..., idx].flatten(-2), dq.flatten(-2), sv[0]], -1)   # (B, H, K, 13C/H + S/H)
        key = torch.cat([mv[1][..., idx].flatten(-2), dk.flatten(-2), sv[1]], -1)
        v = torch.cat([mv[2].flatten(-2), sv[2]], -1)                # (B, H, K, 16C/H + S/H)
        out = F.scaled_dot_product_attention(q, key, v)              # (B, H, K, 16C/H + S/H)
        out = out.transpose(1, 2)                                    # (B, K, H, 16C/H + S/H)
        y = out[..., : 16 * (c // h)].reshape(b, k, c, 16)           # (B, K, C, 16)
        ys = out[..., 16 * (c // h) :].reshape(b, k, sc)             # (B, K, S)
        return self.proj(y, ys)
