"""Budget-constrained define-by-run search spaces, one module per family.

Each module exposes `space(trial, *, budget, config) -> derived constants` (a `BudgetSpace`) and
`check_budget(budget, config)`. `space_for(family)` looks one up by the family's registered name.
"""

from __future__ import annotations

import importlib

from study.errors import ConfigError

MODULES = {"transformer": "transformer", "transformer-aug": "transformer_aug", "gatr": "gatr"}


def space_for(family: str):
    """The BudgetSpace of a family; ConfigError naming the family when none is defined."""
    if family not in MODULES:
        raise ConfigError(f"unknown family {family!r} (known: {', '.join(MODULES)})")
    return importlib.import_module(f"search_spaces.{MODULES[family]}").space
