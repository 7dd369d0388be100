"""Budget-constrained space of GATr: depth 1-4, multivector channels on a grid, scalar channels = 2 x mv."""

from __future__ import annotations

from search_spaces.budget import BudgetSpace

# mv_channels in steps of 2 (then 4, 8) keeps consecutive F_fwd within ~2x; s_channels scales along.
MV_CHANNELS = tuple(range(2, 32, 2)) + tuple(range(32, 128, 4)) + tuple(range(128, 1024 + 1, 8))


def gatr_shape(mv_channels: int, depth: int) -> dict:
    """Shape kwargs of `build_model("gatr", ...)`: scalar channels grow with the multivector channels."""
    return {"mv_channels": mv_channels, "s_channels": 2 * mv_channels, "depth": depth}


space = BudgetSpace(family="gatr", depths=(1, 4), sizes=MV_CHANNELS, shape=gatr_shape)
check_budget = space.check_budget
