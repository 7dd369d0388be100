"""Approach 2 (IsoFLOP): a parabola in log N per budget gives N_opt(C), L_opt(C); then power laws."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from analysis.allocation import FlopsModel
from study.errors import EquiscaleError

MIN_BUDGETS = 3
MIN_TRIALS = 3


@dataclass(frozen=True)
class IsoFlopCurve:
    """L ≈ c2 (ln N)² + c1 ln N + c0 at one budget, with its vertex."""

    budget: float
    coeffs: tuple[float, float, float]  # (c2, c1, c0)
    n_opt: float
    d_opt: float
    loss_opt: float
    n_trials: int


@dataclass(frozen=True)
class IsoFlopFit:
    """N_opt = n_coef·C^a, D_opt = d_coef·C^b, L_opt = l_coef·C^(−l_exp) across budgets."""

    curves: tuple[IsoFlopCurve, ...]
    a: float
    n_coef: float
    b: float
    d_coef: float
    l_exp: float
    l_coef: float

    def allocation(self, c):
        c = np.asarray(c, float)
        return self.n_coef * c**self.a, self.d_coef * c**self.b

    def predict_loss(self, c):
        return self.l_coef * np.asarray(c, float) ** (-self.l_exp)


def check_isoflop_data(budget, n, loss) -> None:
    """Error naming what is missing: fewer than 3 budgets or a budget with fewer than 3 trials."""
    budget = np.asarray(budget, float)
    values, counts = np.unique(budget, return_counts=True)
    if values.size < MIN_BUDGETS:
        raise EquiscaleError(f"Approach 2 (IsoFLOP) needs at least {MIN_BUDGETS} budgets, got {values.size}")
    few = [f"{v:.3g} ({k})" for v, k in zip(values, counts) if k < MIN_TRIALS]
    if few:
        raise EquiscaleError(
            f"Approach 2 (IsoFLOP) needs at least {MIN_TRIALS} trials per budget; too few at budget(s) "
            + ", ".join(few[:5]) + (" …" if len(few) > 5 else "")
        )
    for name, v in (("params N", n), ("loss", loss)):
        v = np.asarray(v, float)
        if not np.all(np.isfinite(v) & (v > 0)):
            raise EquiscaleError(f"{name} must be positive and finite for the IsoFLOP fit")


def fit_curve(budget: float, n, loss, model: FlopsModel) -> IsoFlopCurve:
    """Parabola in ln N at one budget; error if it does not open upwards (no bracketed minimum)."""
    n, loss = np.asarray(n, float), np.asarray(loss, float)
    x = np.log(n)
    if np.unique(x).size < 3:
        raise EquiscaleError(f"budget {budget:.3g}: the IsoFLOP parabola needs at least 3 distinct sizes N")
    c2, c1, c0 = np.polyfit(x, loss, 2)
    if not c2 > 0:
        raise EquiscaleError(f"budget {budget:.3g}: the IsoFLOP parabola opens downwards (no minimum bracketed)")
    x_opt = -c1 / (2 * c2)
    loss_opt = float(c0 - c1 * c1 / (4 * c2))
    if not loss_opt > 0:
        raise EquiscaleError(f"budget {budget:.3g}: the IsoFLOP parabola's minimum is not a positive loss")
    n_opt = float(np.exp(x_opt))
    return IsoFlopCurve(
        budget=float(budget), coeffs=(float(c2), float(c1), float(c0)), n_opt=n_opt,
        d_opt=float(model.samples(n_opt, budget)), loss_opt=loss_opt, n_trials=len(n),
    )


def fit_isoflop(budget, n, loss, *, model: FlopsModel = FlopsModel()) -> IsoFlopFit:
    """Approach 2 over all budgets; N_opt ∝ C^a and D_opt ∝ C^b by least squares in log space."""
    check_isoflop_data(budget, n, loss)
    budget, n, loss = (np.asarray(v, float) for v in (budget, n, loss))
    curves = tuple(fit_curve(c, n[budget == c], loss[budget == c], model) for c in np.unique(budget))
    logc = np.log([k.budget for k in curves])
    a, log_na = np.polyfit(logc, np.log([k.n_opt for k in curves]), 1)
    b, log_db = np.polyfit(logc, np.log([k.d_opt for k in curves]), 1)
    l_slope, log_l = np.polyfit(logc, np.log([k.loss_opt for k in curves]), 1)
    return IsoFlopFit(curves=curves, a=float(a), n_coef=float(np.exp(log_na)), b=float(b),
                      d_coef=float(np.exp(log_db)), l_exp=float(-l_slope), l_coef=float(np.exp(log_l)))
