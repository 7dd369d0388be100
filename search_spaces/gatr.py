"""Budget-constrained space of GATr: depth 1-4, multivector channels on the finest valid grid, s = 2 x mv."""

from __future__ import annotations

from search_spaces.budget import BudgetSpace

# Every mv_channels the network accepts with s_channels = 2 mv (heads = max(1, mv // 8) must divide both).
MV_CHANNELS = tuple(range(1, 4096 + 1))


def gatr_shape(mv_channels: int, depth: int) -> dict:
    """Shape kwargs of `build_model("gatr", ...)`: scalar channels grow with the multivector channels."""
    return {"mv_channels": mv_channels, "s_channels": 2 * mv_channels, "depth": depth}


space = BudgetSpace(family="gatr", depths=(1, 4), sizes=MV_CHANNELS, shape=gatr_shape)
