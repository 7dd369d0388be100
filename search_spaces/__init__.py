"""Budget-constrained define-by-run search spaces (`study.plugins.SearchSpace`), one module per built-in family.

Each module exposes `space` (`space(trial, spec) -> Proposal`, `space.check(spec)`, `space.grid(spec, points)`)
and is registered as an `equiscale.spaces` entry point named after its family (pyproject.toml), the mechanism a
user's package uses for its own. `space_for(family)` finds the installed space of a family by name.
"""

from __future__ import annotations

from search_spaces.budget import BudgetSpace, Proposal, proposal
from study.plugins import loader


def space_for(family: str):
    """The installed search space named after `family`; ConfigError naming an unknown one."""
    return loader.load("spaces", family)


__all__ = ["BudgetSpace", "Proposal", "proposal", "space_for"]
