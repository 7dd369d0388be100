"""Budget-constrained space of the transformer augmented without translations: the same grid as `transformer`."""

from __future__ import annotations

from search_spaces.budget import BudgetSpace
from search_spaces.transformer import WIDTHS, transformer_shape

space = BudgetSpace(family="transformer-aug-notrans", depths=(1, 4), sizes=WIDTHS, shape=transformer_shape)
