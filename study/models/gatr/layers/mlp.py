"""GATr's MLP: geometric bilinear (geometric product and reference join of projections) -> gated GELU -> linear."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from study.models.gatr.layers.bilinear_kernel import gated_bilinear
from study.models.gatr.layers.linear import EquiLinear
from study.models.gatr.primitives import E123


class GeometricMLP(nn.Module):
    """x -> EquiLinear -> [a b, ref·(c ∨ d)] · gelu(grade 0) -> EquiLinear; scalars: linear, GELU, linear.

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
        ref = reference[..., 0, E123].expand(*lead).reshape(1, 1, -1)   # (1, 1, B·K)
        y = gated_bilinear(h.reshape(16, 4 * self.mv, -1), ref, self.mv)  # (16, 2C, B·K)
        return y.view(16, 2 * self.mv, *lead), F.gelu(hs)

    def forward(self, x: torch.Tensor, s: torch.Tensor, reference: torch.Tensor):
        """x (B, K, C, 16), s (B, K, S), reference (B, 1, 1, 16) -> like x and s."""
        return self.out(*self.hidden(x, s, reference))
