"""L(C): power laws through the best run of each budget, and loss ratios between families."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.optimize import least_squares
from scipy.special import expit, logit

from study.errors import EquiscaleError


@dataclass(frozen=True)
class PowerLaw:
    """L(C) = E + coef · C^(−exponent); E = 0 for the plain power law."""

    coef: float
    exponent: float
    E: float = 0.0

    def predict(self, c) -> np.ndarray:
        return self.E + self.coef * np.asarray(c, float) ** (-self.exponent)


def best_per_budget(budget, loss, compute=None) -> tuple[np.ndarray, np.ndarray]:
    """(x, lowest loss at each budget), budgets ascending; x = the budgets, or with `compute` (one value per
    run: its compute on another axis) the compute of each budget's best run."""
    frame = pd.DataFrame({"budget": np.asarray(budget, float), "loss": np.asarray(loss, float)})
    frame["x"] = frame["budget"] if compute is None else np.asarray(compute, float)
    best = frame.loc[frame.groupby("budget")["loss"].idxmin()].sort_values("budget")
    return best["x"].to_numpy(float), best["loss"].to_numpy(float)


def _check(c, loss, minimum: int):
    c, loss = np.asarray(c, float), np.asarray(loss, float)
    for name, v in (("budget C", c), ("loss", loss)):
        if not np.all(np.isfinite(v) & (v > 0)):
            raise EquiscaleError(f"{name} must be positive and finite for the L(C) fit")
    if np.unique(c).size < minimum:
        raise EquiscaleError(f"the L(C) fit needs at least {minimum} budgets, got {np.unique(c).size}")
    return c, loss


def fit_power_law(c, loss) -> PowerLaw:
    """Least squares of log L on log C (at least 3 budgets)."""
    c, loss = _check(c, loss, 3)
    slope, intercept = np.polyfit(np.log(c), np.log(loss), 1)
    return PowerLaw(coef=float(np.exp(intercept)), exponent=float(-slope))


def fit_power_law_irreducible(c, loss, *, start: PowerLaw | None = None) -> PowerLaw:
    """L = E + coef·C^(−exponent) by least squares on log L, 0 < E < min L (at least 4 budgets).

    start: a law to start from (bootstrap refits start from the all-runs fit); when it does not
    converge, the three default starts (E at 0.1%, 50%, 90% of the lowest loss) are tried.

    E = min L · sigmoid(u) keeps E inside its bounds without a bounded solver, so MINPACK's
    Levenberg–Marquardt (fast, in C) does the work; |exponent| ≤ 5 as before.
    """
    c, loss = _check(c, loss, 4)
    c_ref = float(np.exp(np.mean(np.log(c))))  # conditioning: fit in x = C / c_ref
    logx, logl, top = np.log(c / c_ref), np.log(loss), float(loss.min())

    def unpack(p):
        log_coef, exponent, u = p
        return log_coef, float(np.clip(exponent, -5.0, 5.0)), top * float(expit(u))

    def residuals(p):
        log_coef, exponent, e = unpack(p)
        return np.log(e + np.exp(log_coef - exponent * logx)) - logl

    def jacobian(p):  # d r / d (ln coef, exponent, u) with E = top·sigmoid(u)
        log_coef, exponent, e = unpack(p)
        power = np.exp(log_coef - exponent * logx)
        share = power / (e + power)
        return np.stack([share, -logx * share, (e * (1 - e / top)) / (e + power)], axis=1)

    best = None
    if start is not None and 0 < start.E < top:
        res = least_squares(residuals, [np.log(start.coef) - start.exponent * np.log(c_ref), start.exponent,
                                        float(logit(start.E / top))], jac=jacobian, method="lm")
        if res.success and np.all(np.isfinite(res.fun)):
            best = res
    for frac in () if best is not None else (1e-3, 0.5, 0.9):
        e0 = frac * top
        slope, intercept = np.polyfit(logx, np.log(loss - e0), 1)
        p0 = [intercept, min(max(-slope, 1e-6), 5.0), float(logit(frac))]
        res = least_squares(residuals, p0, jac=jacobian, method="lm")
        if np.all(np.isfinite(res.fun)) and (best is None or res.cost < best.cost):
            best = res
    if best is None:
        raise EquiscaleError("the L(C) fit with an irreducible term did not converge")
    log_coef, exponent, e = unpack(best.x)
    return PowerLaw(coef=float(np.exp(log_coef) * c_ref**exponent), exponent=float(exponent), E=float(e))


def loss_ratios(table: pd.DataFrame, *, reference: str | None = None, loss: str = "loss") -> pd.DataFrame:
    """Best loss of each family divided by the reference family's at every shared budget.

    The reference (e.g. the claims' plain baseline, `schema.ClaimFamilies.plain`) defaults to the first
    family, and so does a reference that has no runs.
    """
    best = table.groupby(["family", "budget"])[loss].min().unstack("family")
    families = list(best.columns)
    if reference is None or reference not in families:
        reference = families[0]
    ratio = best.div(best[reference], axis=0).drop(columns=[reference]).dropna(how="all")
    ratio.columns = [f"{f}/{reference}" for f in ratio.columns]
    return ratio
