"""Budget-constrained define-by-run search spaces, one module per family.

Each module exposes `space` (a `BudgetSpace`: `space(trial, *, budget, config) -> Proposal`) and is named
after its family (`transformer-aug` -> `search_spaces/transformer_aug.py`). `space_for(family)` looks one
up for any family registered in `study.models`.
"""

from __future__ import annotations

import importlib

from search_spaces.budget import BudgetSpace, Proposal
from study.models import get_family


def space_for(family: str) -> BudgetSpace:
    """The BudgetSpace of a registered family; ConfigError naming an unknown family."""
    get_family(family)
    return importlib.import_module(f"search_spaces.{family.replace('-', '_')}").space


__all__ = ["BudgetSpace", "Proposal", "space_for"]
