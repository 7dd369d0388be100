"""Features whose dot product is minus the squared distance of two trivector points (for attention).

With w = e123 and v the trivector's (x, y, z) slots (a point p of weight w has v = w·p),
distance_query(x_q) · distance_key(x_k) = −‖w_k v_q − w_q v_k‖² = −w_q² w_k² ‖p_q − p_k‖²: the
distance that the invariant inner product (blind to every e0 component) cannot see. Quadratic in each
trivector, so invariant under reflections too.

With `normalise` each trivector is first scaled by w / (w² + ε) (ε = 1e-3), the normaliser of the official
GATr library's distance-aware attention: its weight becomes w²/(w² + ε) ≈ 1 and v ≈ p, so the product is
≈ −‖p_q − p_k‖², no longer scaled by w_q² w_k² (which can make the distance logits vanish or blow up).
"""

from __future__ import annotations

import torch

from study.models.gatr.primitives.embedding import trivector_direction, trivector_weight


EPSILON = 1e-3


def _trivector_parts(x: torch.Tensor, normalise: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    w = trivector_weight(x)                                           # (..., 1) weight
    v = trivector_direction(x)                                        # (..., 3) weighted position
    if normalise:
        n = w / (w * w + EPSILON)                                     # (..., 1)
        w, v = w * n, v * n
    return w, v, (v * v).sum(-1, keepdim=True)                        # ..., (..., 1) ‖v‖²


def distance_query(x: torch.Tensor, *, normalise: bool = False) -> torch.Tensor:
    """Query features (..., 16) -> (..., 5): [w², ‖v‖², w v]."""
    w, v, vv = _trivector_parts(x, normalise)
    return torch.cat([w * w, vv, w * v], dim=-1)


def distance_key(x: torch.Tensor, *, normalise: bool = False) -> torch.Tensor:
    """Key features (..., 16) -> (..., 5): [−‖v‖², −w², 2 w v], matching `distance_query`."""
    w, v, vv = _trivector_parts(x, normalise)
    return torch.cat([-vv, -(w * w), 2.0 * w * v], dim=-1)
