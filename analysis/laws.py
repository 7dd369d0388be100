"""All laws of one family with bootstrap intervals: L(C), Approach 2 (IsoFLOP), Approach 3 (parametric)."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial

import numpy as np
import pandas as pd

from analysis import axes as X
from analysis import parametric as P
from analysis.allocation import FlopsModel, allocation_exponents
from analysis.bootstrap import LEVEL, Estimate, bootstrap_parametric, estimate
from analysis.isoflop import (BRACKET_RULE, DEFAULT_WINDOW, Bracket, IsoFlopFit, NotIdentified, ResampleTally, bracket,
                              fit_isoflop)
from analysis.points import Points, bootstrap_best, bootstrap_parametric_points, bootstrap_points
from analysis.power import PowerLaw, best_per_budget, fit_power_law, fit_power_law_irreducible
from study.errors import EquiscaleError

APPROACHES = ("power", "isoflop", "parametric")
SCALES = ("A", "B", "coef", "n_coef", "d_coef", "l_coef")  # positive scale factors (see `estimate(positive=)`)
NO_ALLOCATION = "α ≤ 0 or β ≤ 0: L(N, D) has no compute-optimal allocation"
NEGLIGIBLE = 1e-3  # a term of L(N, D) that changes the loss by less than this fraction over the trained runs is absent


@dataclass(frozen=True)
class TrainedRange:
    """The smallest and largest N, D and budget C among a family's runs."""

    n: tuple[float, float]
    d: tuple[float, float]
    c: tuple[float, float]

    @classmethod
    def of(cls, frame: pd.DataFrame) -> "TrainedRange":
        span = lambda col: (float(frame[col].min()), float(frame[col].max()))  # noqa: E731
        return cls(n=span("params"), d=span("samples"), c=span("compute" if "compute" in frame else "budget"))

    def outside(self, *, n=None, d=None, c=None) -> list[str]:
        """Phrases for each of N_opt, D_opt, C that lies outside the trained range (empty: inside)."""
        out = []
        for name, value, (lo, hi) in (("N_opt", n, self.n), ("D_opt", d, self.d), ("budget", c, self.c)):
            if value is None or not np.isfinite(value):
                continue
            if value < lo * (1 - 1e-9):
                out.append(f"{name} {value:.3g} below the smallest trained {lo:.3g}")
            elif value > hi * (1 + 1e-9):
                out.append(f"{name} {value:.3g} above the largest trained {hi:.3g}")
        return out


@dataclass
class FamilyLaws:
    """Fits of one family; `samples[approach][name]` are bootstrap draws, `estimates` their intervals."""

    family: str
    n_runs: int
    n_budgets: int
    flops_model: FlopsModel  # C = K·N^(1+κ)·D with C on `axis`
    batch_size: int | None = None  # one batch size for every budget (when `batch_sizes` is empty)
    power: PowerLaw | None = None
    power_irreducible: PowerLaw | None = None
    isoflop: IsoFlopFit | None = None
    parametric: P.ParametricFit | None = None
    samples: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)
    estimates: dict[str, dict[str, Estimate]] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)  # approach -> why it was not fitted
    n_boot: int = 0
    level: float = LEVEL
    trained: TrainedRange | None = None
    axis: str = X.EXECUTED
    batch_sizes: dict[float, int] = field(default_factory=dict)  # stored budget -> its study's batch size
    group_compute: dict[float, float] = field(default_factory=dict)  # stored budget -> its runs' compute on `axis`
    points: Points | None = None  # the family's trials grouped into points (mean over seeds: `analysis.points`)
    brackets: dict[float, Bracket] = field(default_factory=dict)  # budget -> the bracketing rule on its profile
    isoflop_resamples: ResampleTally | None = None  # Approach 2's bootstrap: budgets bracketed and lost per resample

    def batch_for(self, c: float) -> tuple[int | None, str]:
        """(batch size, '' or a note) for steps at compute c on `axis`: the batch size of the trained budget
        whose compute is c, else that of the nearest trained budget in log compute (the note says which)."""
        if not self.batch_sizes:
            return self.batch_size, ""
        points = {self.group_compute.get(b, b): (b, k) for b, k in self.batch_sizes.items()}
        nearest = min(points, key=lambda x: abs(np.log(x / c)))
        budget, batch = points[nearest]
        if abs(nearest / c - 1) <= 0.01 or len(set(self.batch_sizes.values())) == 1:
            return batch, ""
        return batch, f"steps at the batch size {batch} of the nearest trained budget {budget:.3g}"


def bracket_lines(laws: FamilyLaws) -> list[str]:
    """'budget 1e+12: bracketed (…)' per budget of the family's IsoFLOP profile, by `BRACKET_RULE`; then how
    Approach 2's bootstrap resamples bracketed them (why its interval is unbounded when it is)."""
    lines = [f"budget {b:.3g}: {k.text()}" for b, k in sorted(laws.brackets.items())]
    if laws.isoflop_resamples is not None and laws.isoflop_resamples.n:
        lines.append(f"Approach 2 {laws.isoflop_resamples.text()}")
    return lines


def bracket_text(laws_by_family: dict) -> str:
    """The bracketing rule and every family's budgets under it (what `fit`, `export` and `plot` print)."""
    lines = [f"bracketing rule: {BRACKET_RULE}"]
    for family, laws in laws_by_family.items():
        lines += [f"  {family}: {line}" for line in bracket_lines(laws)]
    return "\n".join(lines)


def _law_values(fit, names):
    def values(c, loss):
        law = fit(c, loss)
        return {k: getattr(law, k) for k in names}
    return values


def _isoflop_values(model, window, on_axis, robust=None, tally: ResampleTally | None = None):
    def values(frame):  # a resample in which fewer than 3 budgets bracket a minimum gives no draw
        try:
            fit = fit_isoflop(frame["budget"], frame["params"], frame["loss"], model=model, window=window,
                              compute=frame["compute"] if on_axis else None, robust=robust)
        except NotIdentified as exc:
            if tally is not None:
                tally.add(exc.bracketed, exc.lost)
            raise
        if tally is not None:
            tally.add(len(fit.curves), fit.lost)
        return {"a": fit.a, "b": fit.b, "n_coef": fit.n_coef, "d_coef": fit.d_coef,
                "l_exp": fit.l_exp, "l_coef": fit.l_coef}
    return values


def fit_family(frame: pd.DataFrame, *, family: str, approaches=APPROACHES, n_boot: int = 200, seed: int = 0,
               level: float = LEVEL, refine: int | None = P.DEFAULT_REFINE, flops_model: FlopsModel | None = None,
               batch_size: int | None = None, strict: bool = True, n_jobs: int | None = 1,
               window: float | None = DEFAULT_WINDOW, axis: str = X.EXECUTED, batch_sizes=None,
               reuse: "FamilyLaws | None" = None, robust: float | None = None) -> FamilyLaws:
    """Fit the requested approaches to one family's runs (columns budget, params, samples, flops, loss; on
    an axis other than executed also compute and executed: `analysis.axes`).

    strict: an approach that cannot be fitted (too little data, no minimum) raises; otherwise it is
    recorded in `skipped` with the reason. window: Approach 2's window in decades of N around each
    budget's best run (None: every run). batch_sizes: stored budget -> batch size (steps = D / batch).
    reuse: laws of the same runs on another axis whose Approach-3 fit L(N, D) (and its bootstrap) is taken
    over (L(N, D) does not depend on the axis; only the cost model and so a and b do). robust: Approach 2's
    parabolas with a Cauchy loss of this scale (`analysis.isoflop`; None: least squares).
    """
    unknown = set(approaches) - set(APPROACHES)
    if unknown:
        raise EquiscaleError(f"unknown approach(es) {sorted(unknown)}; choose from {list(APPROACHES)}")
    model = flops_model or FlopsModel.from_runs(frame["params"], frame["samples"], frame["flops"])
    on_axis = axis != X.EXECUTED
    samples_model = (FlopsModel.from_runs(frame["params"], frame["samples"], frame["executed"]) if on_axis
                     else model)  # D at N_opt spends the stored (executed) budget
    groups = frame.groupby("budget")["compute" if "compute" in frame else "budget"]
    points = Points.of(frame)
    profile = points.profile().frame
    laws = FamilyLaws(family=family, n_runs=len(frame), n_budgets=frame["budget"].nunique(), flops_model=model,
                      batch_size=batch_size, n_boot=n_boot, level=level, trained=TrainedRange.of(frame), axis=axis,
                      batch_sizes=dict(batch_sizes or {}),
                      group_compute={float(b): float(np.exp(np.log(v).mean())) for b, v in groups}, points=points,
                      brackets={float(b): bracket(p["params"], p["loss"]) for b, p in profile.groupby("budget")})
    steps = {"power": lambda: _fit_power(laws, points, n_boot, seed, on_axis),
             "isoflop": lambda: _fit_isoflop(laws, points, n_boot, seed, samples_model, window, on_axis, robust),
             "parametric": lambda: (_reuse_parametric(laws, reuse, model) if reuse is not None else
                                    _fit_parametric(laws, points, n_boot, seed, refine, model, n_jobs))}
    for name in APPROACHES:
        if name not in approaches:
            continue
        try:
            steps[name]()
        except EquiscaleError as exc:
            if strict:
                raise EquiscaleError(f"family {family!r}: {exc}") from None
            laws.skipped[name] = str(exc)
    for approach, draws in laws.samples.items():
        point = _point_values(laws, approach)
        laws.estimates[approach] = {
            k: estimate(point[k], draws.get(k, []), level=level, problem=_point_problem(laws, approach, k),
                        positive=k in SCALES) for k in point}
    return laws


def absent_term(laws: FamilyLaws) -> str:
    """Why Approach 3's N or D term is absent ('' when both matter): a term A/N^α (B/D^β) that changes by
    less than NEGLIGIBLE of the lowest predicted loss across the trained N (D) leaves α (β) undetermined,
    and with it the allocation."""
    f, t = laws.parametric, laws.trained
    if f is None or t is None or not (f.alpha > 0 and f.beta > 0):
        return ""
    with np.errstate(all="ignore"):
        floor = float(f.predict(t.n[1], t.d[1]))
        for name, coef, exp, (lo, hi), term in (("N", f.A, f.alpha, t.n, "A/N^α"), ("D", f.B, f.beta, t.d, "B/D^β")):
            change = coef * (lo ** -exp - hi ** -exp)
            if np.isfinite(change) and np.isfinite(floor) and change < NEGLIGIBLE * floor:
                return (f"the fitted {term} changes the loss by less than {NEGLIGIBLE:.1%} over the trained "
                        f"{name} (α = {f.alpha:.3g}, β = {f.beta:.3g}): the loss does not depend on {name} there, "
                        f"so its exponent and the allocation are not determined")
    return ""


def allocation_problem(laws: FamilyLaws) -> str:
    """Why Approach 3 gives no compute-optimal allocation ('' when it does)."""
    f = laws.parametric
    if f is None:
        return laws.skipped.get("parametric", "no Approach-3 fit")
    if not (f.alpha > 0 and f.beta > 0):
        return NO_ALLOCATION
    return absent_term(laws)


def _point_problem(laws: FamilyLaws, approach: str, key: str) -> str:
    """Why an all-runs value is not identified before looking at its interval ('' when it is)."""
    if approach == "parametric" and key in ("a", "b"):
        return allocation_problem(laws)
    if approach == "parametric" and key in ("A", "alpha", "B", "beta"):
        absent = absent_term(laws)
        if absent and (f"over the trained {'N' if key in ('A', 'alpha') else 'D'} " in absent):
            return absent
    return ""


def _point_values(laws: FamilyLaws, approach: str) -> dict:
    """The all-runs value of every quantity that is bootstrapped for `approach`."""
    if approach in ("power", "power_irreducible"):
        law = laws.power if approach == "power" else laws.power_irreducible
        out = {"coef": law.coef, "exponent": law.exponent}
        return out if approach == "power" else {"E": law.E, **out}
    if approach == "isoflop":
        f = laws.isoflop
        return {"a": f.a, "b": f.b, "n_coef": f.n_coef, "d_coef": f.d_coef, "l_exp": f.l_exp, "l_coef": f.l_coef}
    f = laws.parametric
    if f.alpha > 0 and f.beta > 0:
        a, b = (float(v) for v in allocation_exponents(f.alpha, f.beta, laws.flops_model))
    else:
        a = b = float("nan")
    return {"E": f.E, "A": f.A, "B": f.B, "alpha": f.alpha, "beta": f.beta, "a": a, "b": b}


def _fit_power(laws, points: Points, n_boot, seed, on_axis=False):
    """L(C) through each budget's best point (lowest mean over seeds, any lr); hierarchical bootstrap."""
    frame = points.frame
    compute = frame["compute"].to_numpy(float) if on_axis else None
    budget, loss = frame["budget"].to_numpy(float), frame["loss"].to_numpy(float)
    best = best_per_budget(budget, loss, compute)
    laws.power = fit_power_law(*best)
    laws.samples["power"] = bootstrap_best(_law_values(fit_power_law, ("coef", "exponent")), points, n_boot, seed,
                                           on_axis=on_axis)
    try:
        laws.power_irreducible = fit_power_law_irreducible(*best)
        warm = partial(fit_power_law_irreducible, start=laws.power_irreducible)
        laws.samples["power_irreducible"] = bootstrap_best(_law_values(warm, ("E", "coef", "exponent")), points,
                                                           n_boot, seed, on_axis=on_axis)
    except EquiscaleError as exc:
        laws.skipped["power_irreducible"] = str(exc)


def _fit_isoflop(laws, points: Points, n_boot, seed, model, window, on_axis=False, robust=None):
    """Approach 2 on the IsoFLOP profile's point means (`BRACKET_RULE`); hierarchical bootstrap."""
    profile = points.profile()
    frame = profile.frame
    fit = fit_isoflop(frame["budget"], frame["params"], frame["loss"], model=model, window=window,
                      compute=frame["compute"] if on_axis else None, robust=robust)
    laws.isoflop = fit
    kept = profile.subset(frame["budget"].isin({k.budget for k in fit.curves}).to_numpy())  # rejected: not resampled
    laws.isoflop_resamples = ResampleTally()
    laws.samples["isoflop"] = bootstrap_points(_isoflop_values(model, window, on_axis, robust, laws.isoflop_resamples),
                                               kept, n_boot, seed)


def _reuse_parametric(laws, other: "FamilyLaws", model):
    """Take over another axis's L(N, D) fit and draws; a and b follow from this axis's cost model."""
    if other.parametric is None:
        raise EquiscaleError(other.skipped.get("parametric", "no Approach-3 fit"))
    laws.parametric = other.parametric
    draws = {k: v for k, v in other.samples.get("parametric", {}).items() if k in ("A", "B", "E", "alpha", "beta")}
    if draws:
        ok = (draws["alpha"] > 0) & (draws["beta"] > 0)
        draws["a"], draws["b"] = allocation_exponents(np.where(ok, draws["alpha"], np.nan),
                                                      np.where(ok, draws["beta"], np.nan), model)
    laws.samples["parametric"] = draws


def _fit_parametric(laws, points: Points, n_boot, seed, refine, model, n_jobs):
    """L(N, D) through the IsoFLOP profile's point means; the bootstrap resamples points and, where a point has
    several seeds, its seeds (without replicates: the bootstrap of runs, as before)."""
    profile = points.profile()
    frame = profile.frame
    n, d, loss = frame["params"].to_numpy(), frame["samples"].to_numpy(), frame["loss"].to_numpy()
    fit = P.fit_parametric(n, d, loss, refine=refine)
    laws.parametric = fit
    if not n_boot:
        draws = {}
    elif profile.replicated:
        draws = bootstrap_parametric_points(profile, fit, n_boot=n_boot, seed=seed)
    else:
        draws = bootstrap_parametric(n, d, loss, fit, n_boot=n_boot, seed=seed, n_jobs=n_jobs)
    if draws:
        ok = (draws["alpha"] > 0) & (draws["beta"] > 0)
        a, b = allocation_exponents(np.where(ok, draws["alpha"], np.nan), np.where(ok, draws["beta"], np.nan), model)
        draws["a"], draws["b"] = a, b
    laws.samples["parametric"] = draws
