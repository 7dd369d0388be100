"""Equivariant layer norm: multivectors by their root-mean inner product over channels, scalars plainly."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from study.models.gatr.primitives import inner_product

EPS = 1e-6


def equi_layer_norm(x: torch.Tensor, s: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """x (…, C, 16) / sqrt(mean_c <x_c, x_c> + eps); s (…, S): layer norm without affine."""
    norm = inner_product(x, x).mean(-1, keepdim=True)               # (…, 1)
    return x * torch.rsqrt(norm + EPS).unsqueeze(-1), F.layer_norm(s, s.shape[-1:])
