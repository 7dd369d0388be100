"""Measured E(3) equivariance of a model on a batch: ||f(g·x) − g·f(x)|| / ||g·f(x)||."""

from __future__ import annotations

import torch
from torch import nn

from study.benchmark.transforms import apply_to_points, random_e3, transform_batch


@torch.no_grad()
def equivariance_error(
    model: nn.Module,
    pos0: torch.Tensor,
    vel0: torch.Tensor,
    props: torch.Tensor,
    *,
    generator: torch.Generator | None = None,
    reflection_prob: float = 0.5,
) -> float:
    """Relative error of f(g·x) = g·f(x) with one random E(3) element (rotation, reflection with
    probability `reflection_prob`, translation) per scene of the batch (B, K, M, 3)."""
    was_training = model.training
    model.eval()
    try:
        R, t = random_e3(pos0.shape[0], generator=generator, dtype=torch.float64,
                         reflection_prob=reflection_prob)
        R, t = R.to(pos0), t.to(pos0)
        gpos, gvel, gprops, _ = transform_batch(R, t, pos0, vel0, props)
        expected = apply_to_points(R, t, model(pos0, vel0, props))   # g·f(x)  (B, K, M, 3)
        actual = model(gpos, gvel, gprops)                           # f(g·x)
        return float(torch.linalg.vector_norm(actual - expected) / torch.linalg.vector_norm(expected))
    finally:
        model.train(was_training)
