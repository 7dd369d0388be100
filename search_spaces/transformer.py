"""Budget-constrained space of the plain transformer: depth 1-4, width on a grid valid for heads = width // 32."""

from __future__ import annotations

from search_spaces.budget import BudgetSpace

# Widths below 64 use one head (any multiple of 8); from 64 on, heads = width // 32 must divide the width,
# which holds for multiples of 32. Consecutive widths differ by < 2x, far finer than the F_fwd range.
WIDTHS = tuple(range(8, 64, 8)) + tuple(range(64, 4096 + 1, 32))


def transformer_shape(width: int, depth: int) -> dict:
    """Shape kwargs of `build_model("transformer", ...)`."""
    return {"width": width, "depth": depth}


space = BudgetSpace(family="transformer", depths=(1, 4), sizes=WIDTHS, shape=transformer_shape)
check_budget = space.check_budget
