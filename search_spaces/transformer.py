"""Budget-constrained space of the plain transformer: depth 1-4, width from 8 on the finest valid grid."""

from __future__ import annotations

from search_spaces.budget import BudgetSpace

# Every width the network accepts (heads = width // 32 must divide it): consecutive widths differ by
# a few percent, so rounding to the grid barely moves F_fwd and the extremes of the F range are reachable.
WIDTHS = tuple(range(8, 16384 + 1))


def transformer_shape(width: int, depth: int) -> dict:
    """Shape kwargs of `build_model("transformer", ...)`."""
    return {"width": width, "depth": depth}


space = BudgetSpace(family="transformer", depths=(1, 4), sizes=WIDTHS, shape=transformer_shape)
