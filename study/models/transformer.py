"""Plain pre-LayerNorm transformer over one token per body (the non-equivariant baseline).

Token features: the body's raw marker positions and velocities (flattened) and its props, in world
coordinates (no centring, so the network is not even translation-invariant: that is the point of
the baseline). Output: predicted displacement of every marker, added to pos0.
Heads = max(1, width // 32); MLP ratio 4, GELU; attention via one `scaled_dot_product_attention`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from study.errors import ConfigError

SHAPE_PARAMS = ("width", "depth")
DEFAULT_SHAPE = {"width": 32, "depth": 1}
GRANULARITY = {"width": 32, "depth": 1}  # widths that are multiples of 32 are always valid
MINIMUM = {"width": 8, "depth": 1}
MLP_RATIO = 4
HEAD_WIDTH = 32


def heads_for(width: int) -> int:
    """Number of attention heads for a width: width // 32, at least 1."""
    return max(1, width // HEAD_WIDTH)


def validate(*, width: int, depth: int, heads: int | None = None) -> None:
    """Reject shapes the network cannot take (ConfigError naming the parameter); `heads`: see `build`."""
    if width < MINIMUM["width"]:
        raise ConfigError(f"transformer: width must be >= {MINIMUM['width']}, got {width}")
    if depth < 1:
        raise ConfigError(f"transformer: depth must be >= 1, got {depth}")
    if heads is not None:
        if heads < 1 or width % heads:
            raise ConfigError(f"transformer: heads must be >= 1 and divide width {width}, got {heads}")
        return
    heads = heads_for(width)
    if width % heads:
        raise ConfigError(
            f"transformer: width {width} is not divisible by its {heads} heads (heads = width // 32); "
            f"use a multiple of 32"
        )


def _features(markers: int, props: int) -> int:
    return 6 * markers + props


class Block(nn.Module):
    """x + Attn(LN x); x + MLP(LN x)."""

    def __init__(self, width: int, heads: int):
        super().__init__()
        self.heads = heads
        self.norm1 = nn.LayerNorm(width)
        self.qkv = nn.Linear(width, 3 * width)
        self.proj = nn.Linear(width, width)
        self.norm2 = nn.LayerNorm(width)
        self.fc1 = nn.Linear(width, MLP_RATIO * width)
        self.fc2 = nn.Linear(MLP_RATIO * width, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, K, W)
        b, k, w = x.shape
        qkv = self.qkv(self.norm1(x)).view(b, k, 3, self.heads, w // self.heads)
        q, key, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)          # each (B, H, K, W/H)
        att = F.scaled_dot_product_attention(q, key, v)             # (B, H, K, W/H)
        x = x + self.proj(att.transpose(1, 2).reshape(b, k, w))
        return x + self.fc2(F.gelu(self.fc1(self.norm2(x))))


class Transformer(nn.Module):
    """(pos0, vel0, props) -> predicted posT, one token per body."""

    def __init__(self, *, width: int, depth: int, markers: int, props: int, heads: int | None = None):
        super().__init__()
        self.markers = markers
        self.embed = nn.Linear(_features(markers, props), width)
        heads = heads_for(width) if heads is None else heads
        self.blocks = nn.ModuleList(Block(width, heads) for _ in range(depth))
        self.norm = nn.LayerNorm(width)
        self.head = nn.Linear(width, 3 * markers)

    def forward(self, pos0: torch.Tensor, vel0: torch.Tensor, props: torch.Tensor) -> torch.Tensor:
        b, k, m, _ = pos0.shape                                     # (B, K, M, 3)
        tokens = torch.cat([pos0.reshape(b, k, 3 * m), vel0.reshape(b, k, 3 * m), props], dim=-1)
        x = self.embed(tokens)                                      # (B, K, W)
        for block in self.blocks:
            x = block(x)
        delta = self.head(self.norm(x)).view(b, k, m, 3)            # (B, K, M, 3)
        return pos0 + delta


def build(*, width: int, depth: int, markers: int, props: int, heads: int | None = None) -> Transformer:
    """The network for a validated shape. `heads` (investigation option, benchmarks/head_probe.py): this many
    heads at every width instead of the rule's; FLOPs and parameters do not depend on it."""
    validate(width=width, depth=depth, heads=heads)
    return Transformer(width=width, depth=depth, markers=markers, props=props, heads=heads)


def forward_flops(*, width: int, depth: int, bodies: int, markers: int, props: int) -> int:
    """Matmul FLOPs (2·m·n·k each) of one forward pass over one scene of `bodies` tokens: embedding,
    per block qkv/out/fc1/fc2 and attention scores/weighted sum, head."""
    k, w = bodies, width
    embed = 2 * k * _features(markers, props) * w
    projections = 2 * k * w * (3 * w + w + 2 * MLP_RATIO * w)   # qkv, out, fc1, fc2
    attention = 2 * (2 * k * k * w)                             # scores and weighted sum, all heads
    head = 2 * k * w * 3 * markers
    return embed + depth * (projections + attention) + head


def backward_flops(*, width: int, depth: int, bodies: int, markers: int, props: int) -> int:
    """Matmul FLOPs of one backward pass over one scene, as executed: every product costs twice its
    forward (input and weight gradients) except the input embedding, whose input needs no gradient
    (its weight gradient alone, once its forward)."""
    embed = 2 * bodies * _features(markers, props) * width
    return 2 * forward_flops(width=width, depth=depth, bodies=bodies, markers=markers, props=props) - embed


def param_count(*, width: int, depth: int, markers: int, props: int) -> int:
    """Trainable parameters (weights, biases, LayerNorm affine)."""
    w, h = width, MLP_RATIO * width
    block = 2 * w + (3 * w * w + 3 * w) + (w * w + w) + 2 * w + (w * h + h) + (h * w + w)
    return (_features(markers, props) * w + w) + depth * block + 2 * w + (w * 3 * markers + 3 * markers)
