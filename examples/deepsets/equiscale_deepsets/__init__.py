"""DeepSets over bodies: a permutation-equivariant, not E(3)-equivariant family, written outside equiscale.

Per body, φ maps the body's flattened markers and props (F = 6·M + P features) to `width` features through
`depth` hidden layers; the mean over bodies is appended to each body's features and ρ maps the 2·width
features to a displacement of every marker, added to pos0. Everything the study needs is below: the network,
its shape parameters, and its executed FLOPs and parameters, counted like equiscale's own families
(every product 2·m·n·k; the backward pass as executed: twice the forward, except the first layer's input
gradient, which is never computed).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

import torch
from torch import nn

from search_spaces import BudgetSpace
from study.errors import ConfigError


class DeepSets(nn.Module):
    def __init__(self, *, width: int, depth: int, markers: int, props: int):
        super().__init__()
        features = 6 * markers + props
        layers: list[nn.Module] = [nn.Linear(features, width), nn.GELU()]
        for _ in range(depth):
            layers += [nn.Linear(width, width), nn.GELU()]
        self.phi = nn.Sequential(*layers)
        self.rho = nn.Sequential(nn.Linear(2 * width, width), nn.GELU(), nn.Linear(width, 3 * markers))

    def forward(self, pos0: torch.Tensor, vel0: torch.Tensor, props: torch.Tensor) -> torch.Tensor:
        B, K, M, _ = pos0.shape
        x = torch.cat([pos0.reshape(B, K, -1), vel0.reshape(B, K, -1), props], dim=-1)   # (B, K, F)
        h = self.phi(x)                                                                    # (B, K, w)
        pooled = h.mean(dim=1, keepdim=True).expand_as(h)                                  # (B, K, w)
        return pos0 + self.rho(torch.cat([h, pooled], dim=-1)).reshape(B, K, M, 3)        # (B, K, M, 3)


def _products(width: int, depth: int, markers: int, props: int) -> list[tuple[int, int]]:
    """(in, out) of every linear layer per body, in execution order."""
    features = 6 * markers + props
    return [(features, width)] + depth * [(width, width)] + [(2 * width, width), (width, 3 * markers)]


@dataclass(frozen=True)
class DeepSetsFamily:
    """The `study.plugins.Family` protocol, implemented outside equiscale."""

    name: str = "deepsets"
    shape_params: tuple[str, ...] = ("width", "depth")
    default_shape: Mapping[str, int] = field(default_factory=lambda: {"width": 16, "depth": 1})
    minimum: Mapping[str, int] = field(default_factory=lambda: {"width": 4, "depth": 0})
    augment: bool = False
    equivariant: bool = False

    def build(self, sample: Mapping[str, int], shape: Mapping[str, int]) -> nn.Module:
        return DeepSets(markers=sample["markers"], props=sample["props"], **shape)

    def validate(self, shape: Mapping[str, int]) -> None:
        if shape["width"] < 4:
            raise ConfigError(f"deepsets: width must be >= 4, got {shape['width']}")

    def forward_flops(self, sample: Mapping[str, int], shape: Mapping[str, int]) -> int:
        per_body = sum(2 * i * o for i, o in _products(shape["width"], shape["depth"], sample["markers"],
                                                       sample["props"]))
        return sample["bodies"] * per_body

    def backward_flops(self, sample: Mapping[str, int], shape: Mapping[str, int]) -> int:
        i, o = _products(shape["width"], shape["depth"], sample["markers"], sample["props"])[0]
        return 2 * self.forward_flops(sample, shape) - sample["bodies"] * 2 * i * o

    def param_count(self, sample: Mapping[str, int], shape: Mapping[str, int]) -> int:
        return sum((i + 1) * o for i, o in _products(shape["width"], shape["depth"], sample["markers"],
                                                     sample["props"]))


family = DeepSetsFamily()
# Widths 4..4096 at depth 0..2; equiscale's BudgetSpace solves the width from the suggested FLOPs per sample.
def deepsets_shape(width: int, depth: int) -> dict:
    return {"width": width, "depth": depth}


space = BudgetSpace(family="deepsets", depths=(0, 2), sizes=tuple(range(4, 4097)), shape=deepsets_shape)
