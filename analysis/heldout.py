"""Held-out check of L(C): the power law fitted without the largest budget predicts that budget's best loss.

The law and its bootstrap (points resampled within each budget and seeds within each point, as in
`analysis.laws`; `analysis.points`) use the other budgets only; the prediction's interval is the percentile interval of the resampled laws at the held-out
budget. Needs 4 budgets (3 to fit).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from analysis.bootstrap import LEVEL, Estimate, estimate
from analysis.points import Points, bootstrap_best
from analysis.power import best_per_budget, fit_power_law
from study.errors import EquiscaleError

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


def held_out(family: str, budget=None, loss=None, *, n_boot: int = 200, seed: int = 0, level: float = LEVEL,
             compute=None, points: Points | None = None, on_axis: bool | None = None) -> HeldOut:
    """Fit L(C) = coef·C^(−exponent) to all budgets but the largest; predict the largest one's best loss.

    compute: each run's compute on another axis (`analysis.axes`): the law is then fitted through each
    budget's best run at its compute, and predicts the loss at the compute of the largest budget's best run.
    points: the family's points (`analysis.points`, best = lowest mean over seeds) instead of budget, loss and
    compute (each run its own point); on_axis: x is the points' compute (default: when `compute` is given)."""
    if points is None:
        points = Points.from_arrays(budget, loss, compute=compute)
        on_axis = compute is not None
    frame = points.frame
    budget, loss = frame["budget"].to_numpy(float), frame["loss"].to_numpy(float)
    compute = frame["compute"].to_numpy(float) if on_axis else None
    x, best = best_per_budget(budget, loss, compute)
    top = float(x[-1]) if x.size else float("nan")
    measured = float(best[-1]) if x.size else float("nan")
    if x.size < MIN_BUDGETS:
        return HeldOut(family, top, (), measured, Estimate(float("nan")),
                       problem=f"needs at least {MIN_BUDGETS} budgets (3 to fit without the largest), "
                               f"got {x.size}")
    keep = budget < budget.max()
    try:
        law = fit_power_law(x[:-1], best[:-1])
    except EquiscaleError as exc:
        return HeldOut(family, top, (), measured, Estimate(float("nan")), problem=str(exc))
    draws = bootstrap_best(lambda c, l: {"pred": fit_power_law(c, l).predict(top)}, points.subset(keep), n_boot,
                           seed, on_axis=bool(on_axis))
    predicted = estimate(float(law.predict(top)), draws.get("pred", []), level=level, positive=True)
    return HeldOut(family, top, tuple(float(c) for c in x[:-1]), measured, predicted)


@dataclass(frozen=True)
class LeaveOneOut:
    """L(C)'s exponent refitted without each budget in turn, and the budgets that decide it alone."""

    exponents: dict[float, float]  # left-out budget -> exponent of the law through the other budgets
    decisive: tuple[float, ...] = ()  # budgets whose removal moves the exponent outside the all-budget interval
    problem: str = ""  # non-empty: no check (why)


def leave_one_budget_out(budget, loss, exponent: Estimate, *, compute=None) -> LeaveOneOut:
    """Refit L(C) = coef·C^(−exponent) through the best run per budget without each budget in turn (needs
    MIN_BUDGETS budgets, so that 3 remain); a budget is decisive when the exponent without it lies outside
    `exponent`'s bootstrap interval: that one budget alone moves the law."""
    budget, loss = np.asarray(budget, float), np.asarray(loss, float)
    values = np.unique(budget)
    if values.size < MIN_BUDGETS:
        return LeaveOneOut({}, problem=f"needs at least {MIN_BUDGETS} budgets (3 left when one is left out), "
                                       f"got {values.size}")
    if exponent.problem or not exponent.has_interval:
        return LeaveOneOut({}, problem="the exponent has no bootstrap interval to compare with")
    out = {}
    for b in values:
        keep = budget != b
        x, best = best_per_budget(budget[keep], loss[keep], None if compute is None else np.asarray(compute)[keep])
        try:
            out[float(b)] = fit_power_law(x, best).exponent
        except EquiscaleError as exc:
            return LeaveOneOut({}, problem=str(exc))
    decisive = tuple(b for b, e in out.items() if not exponent.low <= e <= exponent.high)
    return LeaveOneOut(out, decisive)
