"""Budget-constrained spaces of the 2-head families (transformer-2h, transformer-aug-2h, gatr-2h): the grids of
their 1-head-rule twins, of which `BudgetSpace.valid_sizes` keeps the sizes 2 heads divide."""

from __future__ import annotations

from search_spaces.budget import BudgetSpace
from search_spaces.gatr import MV_CHANNELS, gatr_shape
from search_spaces.transformer import WIDTHS, transformer_shape

transformer = BudgetSpace(family="transformer-2h", depths=(1, 4), sizes=WIDTHS, shape=transformer_shape)
transformer_aug = BudgetSpace(family="transformer-aug-2h", depths=(1, 4), sizes=WIDTHS, shape=transformer_shape)
gatr = BudgetSpace(family="gatr-2h", depths=(1, 4), sizes=MV_CHANNELS, shape=gatr_shape)
