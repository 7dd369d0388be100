"""Held-out check of L(C): the power law fitted without the largest budget predicts that budget's best loss.

The law and its bootstrap (runs resampled within each budget, as in `analysis.laws`) use the other
budgets only; the prediction's interval is the percentile interval of the resampled laws at the held-out
budget. Needs 4 budgets (3 to fit).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from analysis.bootstrap import LEVEL, Estimate, bootstrap_best_per_budget, estimate
from analysis.power import best_per_budget, fit_power_law

MIN_BUDGETS = 4


@dataclass(frozen=True)
class HeldOut:
    """The prediction at the largest budget from the law fitted to the others, and what was measured."""

    family: str
    budget: float  # the held-out (largest) budget
    fitted_budgets: tuple[float, ...]
    measured: float  # best loss at `budget`
    predicted: Estimate
    problem: str = ""  # non-empty: no check (why)

    @property
    def error(self) -> float:
        """Relative error of the prediction: predicted / measured − 1."""
        return self.predicted.value / self.measured - 1

    @property
    def inside(self) -> bool | None:
        """Whether the measured loss lies inside the prediction's interval (None: no interval)."""
        p = self.predicted
        if self.problem or p.problem or not p.has_interval:
            return None
        return bool(p.low <= self.measured <= p.high)


def held_out(family: str, budget, loss, *, n_boot: int = 200, seed: int = 0, level: float = LEVEL) -> HeldOut:
    """Fit L(C) = coef·C^(−exponent) to all budgets but the largest; predict the largest one's best loss."""
    budget, loss = np.asarray(budget, float), np.asarray(loss, float)
    budgets, best = best_per_budget(budget, loss)
    top = float(budgets[-1]) if budgets.size else float("nan")
    measured = float(best[-1]) if budgets.size else float("nan")
    if budgets.size < MIN_BUDGETS:
        return HeldOut(family, top, (), measured, Estimate(float("nan")),
                       problem=f"needs at least {MIN_BUDGETS} budgets (3 to fit without the largest), "
                               f"got {budgets.size}")
    keep = budget < top
    law = fit_power_law(budgets[:-1], best[:-1])
    draws = bootstrap_best_per_budget(lambda c, l: {"pred": fit_power_law(c, l).predict(top)},
                                      budget[keep], loss[keep], n_boot, seed)
    predicted = estimate(float(law.predict(top)), draws.get("pred", []), level=level, positive=True)
    return HeldOut(family, top, tuple(float(c) for c in budgets[:-1]), measured, predicted)
