"""The GATr network: scene embedding -> EquiLinear -> blocks -> layer norm -> EquiLinear -> positions."""

from __future__ import annotations

import torch
from torch import nn

from study.models.gatr.layers import Block, EquiLinear, equi_layer_norm
from study.models.gatr.nets.scene import chirality, embed_scene, join_reference, predicted_positions

HEAD_MV = 8


def heads_for(mv_channels: int) -> int:
    """Attention heads: max(1, mv_channels // 8)."""
    return max(1, mv_channels // HEAD_MV)


class GATr(nn.Module):
    """(pos0, vel0, props) -> predicted posT; tokens = bodies, mv channels = marker points and velocities.

    `zero_branches` starts every block as the identity (the last layer of its attention and MLP branches the
    zero map). Off by default: on seeds no decision had seen it did not stop small networks (2 multivector
    channels) from sticking on a loss plateau, it only moved which seeds stick (benchmarks/gatr_plateau.py).
    `normalise_distance`: attention's distance features from normalised points (primitives/distance.py).
    `heads`: this many attention heads instead of `heads_for(mv_channels)`. `distance_gain`: a learned factor per
    head on attention's distance logits (layers/attention.py). `init_scale`: every EquiLinear's multivector weights
    drawn `init_scale` times their default N(0, 1/in) scale (the same draws, scaled). `zero_head`: the output layer
    starts as the zero map, so the network starts by predicting no displacement. `velocity_scale`: velocities enter
    as `velocity_scale` × vel0 (a time in seconds: the displacement they cause in that time), on the scale of the
    positions rather than 4.4 times it (a change of units, exactly equivariant, 0 FLOPs)."""

    def __init__(self, *, mv_channels: int, s_channels: int, depth: int, markers: int, props: int,
                 zero_branches: bool = False, normalise_distance: bool = False, heads: int | None = None,
                 distance_gain: bool = False, init_scale: float = 1.0, zero_head: bool = False,
                 velocity_scale: float = 1.0):
        super().__init__()
        self.velocity_scale = float(velocity_scale)
        heads = heads_for(mv_channels) if heads is None else heads
        self.embed = EquiLinear(2 * markers, mv_channels, props, s_channels)
        self.blocks = nn.ModuleList(Block(mv_channels, s_channels, heads, zero_branches=zero_branches,
                                          normalise_distance=normalise_distance, distance_gain=distance_gain)
                                    for _ in range(depth))
        self.head = EquiLinear(mv_channels, markers, s_channels, 0, grade0=False)
        if init_scale != 1.0:
            with torch.no_grad():
                for layer in self.modules():
                    if isinstance(layer, EquiLinear):
                        layer.weight.mul_(init_scale)
        if zero_head:
            self.head.zero_()

    def forward(self, pos0: torch.Tensor, vel0: torch.Tensor, props: torch.Tensor) -> torch.Tensor:
        """pos0, vel0 (B, K, M, 3), props (B, K, P) -> (B, K, M, 3)."""
        chi = chirality(pos0)                                        # (B, K)
        if self.velocity_scale != 1.0:
            vel0 = self.velocity_scale * vel0                        # (B, K, M, 3)
        x = embed_scene(pos0, vel0, chi)                             # (B, K, 2M, 16)
        reference = join_reference(x)                                # (B, 1, 1, 16)
        x, s = self.embed(x, props)                                  # (B, K, C, 16), (B, K, S)
        for block in self.blocks:
            x, s = block(x, s, reference)
        y, _ = self.head(*equi_layer_norm(x, s))                     # (B, K, M, 16)
        return predicted_positions(y, pos0, chi)
