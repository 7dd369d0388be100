"""Approach 2 (IsoFLOP): a parabola in log N per budget gives N_opt(C), L_opt(C); then power laws.

Each budget's parabola is fitted near that budget's minimum only: through the runs whose N lies within
`window` decades of the best run's N (default ±0.5 decades; at least the 3 distinct sizes nearest to
it). A parabola through every run of a wide grid (say 3 decades of N, losses up to 2× the minimum) is
pulled away from the minimum by the far, asymmetric tails of the true curve; near the minimum the
parabola is a good local model. `window=None` fits every run (the old behaviour).

One bracketing rule (`BRACKET_RULE`, `bracket`), the one `fit`, `export`, `plot` and `report` print: a budget
is bracketed when its best point (lowest mean loss over seeds: `analysis.points`) has a trained point on each
side in N. A budget that is not bracketed is left out, with the reason recorded in `IsoFlopFit.rejected`; so
is a bracketed one whose parabola opens downwards or has its vertex outside the sizes it was fitted to. The
window always holds the best point's neighbour on each side, so a bracketed minimum is fitted between them.
Fewer than 3 bracketed budgets is an error saying which and why. The fit takes points (one per shape, the
mean over its seeds); runs without replicates are points of their own.

`robust` (off by default): the parabola is fitted with a Cauchy loss whose scale is `robust` times the window's
lowest loss (`scipy.optimize.least_squares`, started from the least-squares parabola), so that a run stuck far
above its neighbours (GATr's small networks: docs/results/cpu/gatr-plateau.txt) pulls the vertex little.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import least_squares

from analysis.allocation import FlopsModel
from study.errors import EquiscaleError

MIN_BUDGETS = 3
MIN_TRIALS = 3
DEFAULT_WINDOW = 0.5  # decades of N either side of each budget's best run
LN10 = float(np.log(10.0))


class CurveRejected(EquiscaleError):
    """A budget whose parabola gives no minimum; `kind` names the reason in a few words (for counting)."""

    def __init__(self, message: str, *, budget: float = float("nan"), kind: str = ""):
        super().__init__(message)
        self.budget, self.kind = float(budget), kind


class NotIdentified(EquiscaleError):
    """Fewer than MIN_BUDGETS budgets bracket a minimum; `lost` maps each rejected budget to its reason's kind."""

    def __init__(self, message: str, *, bracketed: int = 0, lost: dict[float, str] | None = None):
        super().__init__(message)
        self.bracketed, self.lost = bracketed, dict(lost or {})


@dataclass
class ResampleTally:
    """How Approach 2 fared over its bootstrap resamples: budgets bracketed per resample and, per budget, how often
    and why a resample lost it. What says why the interval of `a` is unbounded when it is."""

    bracketed: Counter = field(default_factory=Counter)  # budgets bracketed -> resamples
    lost: Counter = field(default_factory=Counter)       # (budget, kind) -> resamples

    @property
    def n(self) -> int:
        """Resamples tallied."""
        return sum(self.bracketed.values())

    def add(self, bracketed: int, lost: dict[float, str]) -> None:
        self.bracketed[bracketed] += 1
        self.lost.update(lost.items())

    def text(self) -> str:
        """'under resampling …, 34 of 200 resamples bracket fewer than 3 budgets; budgets lost: 1e+11 in 70 (best
        point at an edge 62, fewer than 3 sizes 8), …', budgets by how often they are lost."""
        fewer = sum(v for k, v in self.bracketed.items() if k < MIN_BUDGETS)
        per_budget: dict[float, Counter] = {}
        for (b, kind), c in self.lost.items():
            per_budget.setdefault(b, Counter())[kind] = c
        parts = [f"{b:.3g} in {sum(kinds.values())} (" + ", ".join(f"{k} {c}" for k, c in kinds.most_common()) + ")"
                 for b, kinds in sorted(per_budget.items(), key=lambda kv: (-sum(kv[1].values()), kv[0]))]
        return (f"under resampling (points within budgets, seeds within points), {fewer} of {self.n} resamples bracket "
                f"fewer than {MIN_BUDGETS} budgets" + ("; budgets lost: " + ", ".join(parts) if parts else
                                                       "; no budget lost"))


@dataclass(frozen=True)
class IsoFlopCurve:
    """L ≈ c2 (ln N)² + c1 ln N + c0 at one budget, with its vertex and the sizes it was fitted on."""

    budget: float
    coeffs: tuple[float, float, float]  # (c2, c1, c0)
    n_opt: float
    d_opt: float
    loss_opt: float
    n_trials: int  # runs at this budget
    n_used: int = 0  # runs inside the window (fitted)
    n_low: float = float("nan")  # smallest and largest N fitted
    n_high: float = float("nan")
    compute: float = float("nan")  # compute at N_opt on the fit's axis (the budget for executed FLOPs)

    @property
    def x(self) -> float:
        """This budget's compute in the power laws across budgets."""
        return self.compute if np.isfinite(self.compute) else self.budget


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
    window: float | None = DEFAULT_WINDOW
    rejected: dict[float, str] = field(default_factory=dict)  # budget -> why it was left out
    robust: float | None = None  # the parabolas' Cauchy scale (None: least squares)
    lost: dict[float, str] = field(default_factory=dict)  # budget -> the kind of why it was left out (`CurveRejected`)

    def allocation(self, c):
        c = np.asarray(c, float)
        return self.n_coef * c**self.a, self.d_coef * c**self.b

    def predict_loss(self, c):
        return self.l_coef * np.asarray(c, float) ** (-self.l_exp)

    def describe_window(self) -> str:
        how = ("least squares" if self.robust is None else
               f"a Cauchy loss of scale {self.robust:g} × the lowest loss in the window")
        if self.window is None:
            return f"each budget's parabola through all its runs, by {how}"
        return (f"each budget's parabola through the point means within ±{self.window:g} decades of N of its best "
                f"point (at least the {MIN_TRIALS} nearest sizes and its neighbour on each side), by {how}")


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


BRACKET_RULE = ("a budget is bracketed when its best point (lowest mean loss over seeds) has a trained point on "
                "each side in N; its parabola in ln N is fitted to the point means within the window around the "
                "best point (always including its neighbour on each side), and a budget that is not bracketed, or "
                "whose parabola opens downwards or has its vertex outside the sizes fitted, is left out")


@dataclass(frozen=True)
class Bracket:
    """Whether a budget's best point has a trained point on each side in N (`BRACKET_RULE`)."""

    bracketed: bool
    best_n: float
    below: float | None  # the nearest trained N below the best point's (None: none)
    above: float | None
    why: str = ""        # not bracketed: why

    def text(self) -> str:
        if self.bracketed:
            return f"bracketed (best N = {self.best_n:.3g} between {self.below:.3g} and {self.above:.3g})"
        return f"not bracketed: {self.why}"


def bracket(n, loss) -> Bracket:
    """The bracketing rule on one budget's points (N, mean loss): the best point's nearest trained N on each side."""
    n, loss = np.asarray(n, float), np.asarray(loss, float)
    best = float(n[np.argmin(loss)])
    lower, upper = n[n < best * (1 - 1e-12)], n[n > best * (1 + 1e-12)]
    below = float(lower.max()) if lower.size else None
    above = float(upper.min()) if upper.size else None
    if below is not None and above is not None:
        return Bracket(True, best, below, above)
    side = ("the smallest and the largest" if below is None and above is None else
            "the smallest" if below is None else "the largest")
    return Bracket(False, best, below, above, f"its best point (N = {best:.3g}) is {side} trained size")


def window_mask(x: np.ndarray, loss: np.ndarray, window: float | None) -> np.ndarray:
    """Points (ln N = x) within `window` decades of the best point, widened to the MIN_TRIALS nearest sizes and
    to the best point's nearest size on each side (so that a bracketed minimum is fitted between them)."""
    if window is None:
        return np.ones(x.size, bool)
    best = x[np.argmin(loss)]
    dist = np.abs(x - best)
    keep = dist <= window * LN10 * (1 + 1e-12)
    if np.unique(x[keep]).size < MIN_TRIALS:
        nearest = np.unique(dist)[:MIN_TRIALS]  # distances of the nearest distinct sizes (ties kept)
        keep = dist <= nearest[-1] * (1 + 1e-12)
    for side in (x < best, x > best):
        if side.any():
            edge = x[side][np.argmin(np.abs(x[side] - best))]
            keep |= np.isclose(x, edge, rtol=0, atol=1e-12)
    return keep


def compute_at(n_opt: float, n, compute) -> float:
    """A budget's compute on another axis at N_opt: ln compute linear in ln N through the budget's runs
    (their geometric mean when N does not vary)."""
    x, y = np.log(np.asarray(n, float)), np.log(np.asarray(compute, float))
    if np.ptp(x) == 0:
        return float(np.exp(y.mean()))
    slope, intercept = np.polyfit(x, y, 1)
    return float(np.exp(intercept + slope * np.log(n_opt)))


def parabola(x: np.ndarray, loss: np.ndarray, robust: float | None = None) -> np.ndarray:
    """(c2, c1, c0) of L ≈ c2 x² + c1 x + c0: least squares, or with `robust` a Cauchy loss of scale
    `robust` × min(loss) (from the least-squares start; with only 3 distinct x both fit exactly)."""
    coeffs = np.polyfit(x, loss, 2)
    if robust is None or np.unique(x).size <= 3:
        return coeffs
    fit = least_squares(lambda c: np.polyval(c, x) - loss, coeffs, loss="cauchy", f_scale=robust * float(loss.min()))
    return fit.x


def fit_curve(budget: float, n, loss, model: FlopsModel, window: float | None = DEFAULT_WINDOW,
              compute=None, *, robust: float | None = None) -> IsoFlopCurve:
    """Parabola in ln N near the minimum at one budget; error if it brackets no minimum. compute: each run's
    compute on another axis (then `IsoFlopCurve.compute` is the budget's compute at N_opt). robust: see the
    module's docstring (None: least squares)."""
    n, loss = np.asarray(n, float), np.asarray(loss, float)
    x = np.log(n)
    if np.unique(x).size < 3:
        raise CurveRejected(f"budget {budget:.3g}: the IsoFLOP parabola needs at least 3 distinct sizes N",
                            budget=budget, kind="fewer than 3 sizes")
    rule = bracket(n, loss)
    if not rule.bracketed:
        raise CurveRejected(f"budget {budget:.3g}: {rule.text()}", budget=budget, kind="best point at an edge")
    keep = window_mask(x, loss, window)
    xs, ls = x[keep], loss[keep]
    c2, c1, c0 = parabola(xs, ls, robust)
    if not c2 > 0:
        raise CurveRejected(f"budget {budget:.3g}: bracketed, but the IsoFLOP parabola opens downwards",
                            budget=budget, kind="parabola opens downwards")
    x_opt = -c1 / (2 * c2)
    n_low, n_high = float(np.exp(xs.min())), float(np.exp(xs.max()))
    if not xs.min() <= x_opt <= xs.max():
        vertex = f"{np.exp(x_opt):.3g}" if abs(x_opt) < 700 else f"10^{x_opt / LN10:.4g}"   # exp overflows past ~709
        raise CurveRejected(f"budget {budget:.3g}: bracketed, but the parabola's vertex N = {vertex} lies "
                            f"outside the sizes it was fitted to [{n_low:.3g}, {n_high:.3g}]",
                            budget=budget, kind="vertex outside its sizes")
    loss_opt = float(c0 - c1 * c1 / (4 * c2))
    if not loss_opt > 0:
        raise CurveRejected(f"budget {budget:.3g}: the IsoFLOP parabola's minimum is not a positive loss",
                            budget=budget, kind="minimum not a positive loss")
    n_opt = float(np.exp(x_opt))
    return IsoFlopCurve(
        budget=float(budget), coeffs=(float(c2), float(c1), float(c0)), n_opt=n_opt,
        d_opt=float(model.samples(n_opt, budget)), loss_opt=loss_opt, n_trials=len(n), n_used=int(keep.sum()),
        n_low=n_low, n_high=n_high, compute=float(budget) if compute is None else compute_at(n_opt, n, compute),
    )


def fit_isoflop(budget, n, loss, *, model: FlopsModel = FlopsModel(),
                window: float | None = DEFAULT_WINDOW, compute=None, robust: float | None = None) -> IsoFlopFit:
    """Approach 2 over all budgets; N_opt ∝ C^a and D_opt ∝ C^b by least squares in log space.

    model: the FLOP model that gives D_opt from N_opt and the (stored, executed) budget. compute: each
    run's compute on another axis (`analysis.axes`); the runs stay grouped by their budget, and C in the
    power laws is each budget's compute at its N_opt (`compute_at`).

    Budgets whose parabola brackets no minimum are left out (`rejected`, with the reason); fewer than
    3 bracketed budgets is an error naming each rejected budget and why. robust: each budget's parabola with a
    Cauchy loss of this relative scale (None: least squares; see the module's docstring).
    """
    if robust is not None and not robust > 0:
        raise EquiscaleError(f"the robust IsoFLOP fit's scale must be a positive fraction of the lowest loss, got {robust}")
    if window is not None and not window > 0:
        raise EquiscaleError(f"the IsoFLOP window must be a positive number of decades (or None: all runs), got {window}")
    check_isoflop_data(budget, n, loss)
    budget, n, loss = (np.asarray(v, float) for v in (budget, n, loss))
    compute = None if compute is None else np.asarray(compute, float)
    curves, rejected, lost = [], {}, {}
    for c in np.unique(budget):
        at = budget == c
        try:
            curves.append(fit_curve(c, n[at], loss[at], model, window, None if compute is None else compute[at],
                                    robust=robust))
        except CurveRejected as exc:
            rejected[float(c)], lost[float(c)] = str(exc), exc.kind
    if len(curves) < MIN_BUDGETS:
        raise NotIdentified(
            f"Approach 2 (IsoFLOP) is not identified: {len(curves)} of {len(curves) + len(rejected)} budgets "
            f"bracket a minimum (needs {MIN_BUDGETS}): " + "; ".join(rejected.values()), bracketed=len(curves),
            lost=lost)
    logc = np.log([k.x for k in curves])
    if np.unique(logc).size < MIN_BUDGETS:
        raise EquiscaleError(f"Approach 2 (IsoFLOP) needs {MIN_BUDGETS} bracketed budgets of distinct compute, got "
                             f"{np.unique(logc).size}")
    a, log_na = np.polyfit(logc, np.log([k.n_opt for k in curves]), 1)
    b, log_db = np.polyfit(logc, np.log([k.d_opt for k in curves]), 1)
    l_slope, log_l = np.polyfit(logc, np.log([k.loss_opt for k in curves]), 1)
    return IsoFlopFit(curves=tuple(curves), a=float(a), n_coef=float(np.exp(log_na)), b=float(b),
                      d_coef=float(np.exp(log_db)), l_exp=float(-l_slope), l_coef=float(np.exp(log_l)),
                      window=window, rejected=rejected, robust=robust, lost=lost)
