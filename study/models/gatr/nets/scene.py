"""How a rigid-body scene enters and leaves GATr: markers as points, velocities as directions.

Reflections: trivector points flip sign under the Pin action, so inputs are multiplied by each
body's chirality (sign of its marker-frame volume, which flips too) and the join by the reference's
e123 component; the output displacement is chirality·(direction slots − e123·pos0), exactly
E(3)-equivariant.
"""

from __future__ import annotations

import torch

from study.models.gatr.primitives import embed_direction, embed_point, trivector_direction, trivector_weight


def chirality(pos0: torch.Tensor) -> torch.Tensor:
    """±1 per body (B, K): sign of the volume spanned by markers 1..3 around marker 0 (+1 if M < 4)."""
    if pos0.shape[-2] < 4:
        return pos0.new_ones(pos0.shape[:-2])
    arms = pos0[..., 1:4, :] - pos0[..., :1, :]                      # (B, K, 3, 3)
    vol = torch.linalg.det(arms)                                     # (B, K)
    return torch.where(vol >= 0, 1.0, -1.0).to(pos0.dtype)


def embed_scene(pos0: torch.Tensor, vel0: torch.Tensor, chi: torch.Tensor) -> torch.Tensor:
    """pos0, vel0 (B, K, M, 3), chi (B, K) -> (B, K, 2M, 16): chirality × [marker points, velocities]."""
    return chi[..., None, None] * torch.cat([embed_point(pos0), embed_direction(vel0)], dim=-2)


def join_reference(x: torch.Tensor) -> torch.Tensor:
    """The mean input multivector of each scene (B, K, 2M, 16) -> (B, 1, 1, 16), for the equivariant join."""
    return x.mean(dim=(1, 2), keepdim=True)


def predicted_positions(y: torch.Tensor, pos0: torch.Tensor, chi: torch.Tensor) -> torch.Tensor:
    """Output multivectors y (B, K, M, 16) -> positions (B, K, M, 3): pos0 + chi·(slots − e123·pos0)."""
    disp = chi[..., None, None] * (trivector_direction(y) - trivector_weight(y) * pos0)   # (B, K, M, 3)
    return pos0 + disp
