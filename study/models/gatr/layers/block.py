"""One GATr block: pre-norm attention and MLP with residuals on multivectors and scalars alike."""

from __future__ import annotations

import torch
from torch import nn

from study.models.gatr.layers.attention import Attention
from study.models.gatr.layers.mlp import GeometricMLP
from study.models.gatr.layers.norm import equi_layer_norm


class Block(nn.Module):
    """x + Attn(LN x); x + MLP(LN x). With `zero_branches` both branches' last layers start as the zero map
    (the block starts as the identity: the network's own choice, see nets/gatr.py)."""

    def __init__(self, mv: int, s: int, heads: int, *, zero_branches: bool = False,
                 normalise_distance: bool = False, distance_gain: bool = False):
        super().__init__()
        self.attention = Attention(mv, s, heads, normalise_distance=normalise_distance, distance_gain=distance_gain)
        self.mlp = GeometricMLP(mv, s)
        if zero_branches:
            self.attention.proj.zero_()
            self.mlp.out.zero_()

    def forward(self, x: torch.Tensor, s: torch.Tensor, reference: torch.Tensor):
        """x (B, K, C, 16), s (B, K, S), reference (B, 1, 1, 16) -> like x and s."""
        dx, ds = self.attention(*equi_layer_norm(x, s))
        x, s = x + dx, s + ds
        dx, ds = self.mlp(*equi_layer_norm(x, s), reference)
        return x + dx, s + ds
