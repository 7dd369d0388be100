"""Budget-constrained spaces of the fixed-head families (transformer-2h, transformer-aug-2h, gatr-2h; transformer-1h,
transformer-aug-1h, gatr-1h): the grids of their head-rule twins, of which `BudgetSpace.valid_sizes` keeps the sizes
the head count divides (every size for 1 head; even widths and multivector channels for 2)."""

from __future__ import annotations

from search_spaces.budget import BudgetSpace
from search_spaces.gatr import MV_CHANNELS, gatr_shape
from search_spaces.transformer import WIDTHS, transformer_shape

transformer_2h = BudgetSpace(family="transformer-2h", depths=(1, 4), sizes=WIDTHS, shape=transformer_shape)
transformer_aug_2h = BudgetSpace(family="transformer-aug-2h", depths=(1, 4), sizes=WIDTHS, shape=transformer_shape)
gatr_2h = BudgetSpace(family="gatr-2h", depths=(1, 4), sizes=MV_CHANNELS, shape=gatr_shape)
transformer_1h = BudgetSpace(family="transformer-1h", depths=(1, 4), sizes=WIDTHS, shape=transformer_shape)
transformer_aug_1h = BudgetSpace(family="transformer-aug-1h", depths=(1, 4), sizes=WIDTHS, shape=transformer_shape)
gatr_1h = BudgetSpace(family="gatr-1h", depths=(1, 4), sizes=MV_CHANNELS, shape=gatr_shape)
