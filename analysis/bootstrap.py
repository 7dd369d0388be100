"""Bootstrap over runs: resampling with replacement, percentile intervals, fast parametric refits.

Every resample draws as many runs as there are, with replacement, from one family's runs (within each
budget where the statistic is per budget: `bootstrap_runs` with the budget as group). An interval is
reported only when it is bounded and contains its own point estimate; otherwise `Estimate.problem`
says why and no number is shown.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from joblib import Parallel, delayed

from analysis import parametric as P
from study.errors import EquiscaleError

LEVEL = 0.95
# Bootstrap refits start from the all-runs optimum plus this many re-screened grid starts. 0: measured on
# synthetic and Chinchilla runs, an extra start changes no interval and doubles the time.
BOOTSTRAP_STARTS = 0
_REFIT_ERRORS = (EquiscaleError, np.linalg.LinAlgError, ValueError, FloatingPointError)


@dataclass(frozen=True)
class Estimate:
    """A point estimate (fit on all runs) with a percentile bootstrap interval, or why there is none."""

    value: float
    low: float = float("nan")
    high: float = float("nan")
    problem: str = ""  # non-empty: not identified; show this instead of the numbers

    @property
    def has_interval(self) -> bool:
        return not self.problem and bool(np.isfinite(self.low) and np.isfinite(self.high))

    def as_dict(self) -> dict:
        if self.problem:
            return {"value": None, "ci": [None, None], "not_identified": self.problem}
        return {"value": _num(self.value), "ci": [_num(self.low), _num(self.high)]}

    def text(self) -> str:
        """'1.23 [1.1, 1.4]', '1.23' without bootstrap, or 'not identified: why'."""
        if self.problem:
            return f"not identified: {self.problem}"
        return f"{self.value:.4g}" + (f"  [{self.low:.4g}, {self.high:.4g}]" if self.has_interval else "")


def _num(x):
    x = float(x)
    return x if np.isfinite(x) else None


def estimate(value, samples, *, level: float = LEVEL, problem: str = "") -> Estimate:
    """Point value with the (1-level)/2 and (1+level)/2 percentiles of the bootstrap samples.

    Not identified (`problem` set) when the point value is not finite, when more than (1-level)/2 of the
    resamples gave no fit (NaN), when a percentile is infinite (the interval is unbounded), or when the
    point value lies outside its own interval (the fit is unstable under resampling).
    """
    value = float(value)
    if problem:
        return Estimate(value, problem=problem)
    if not np.isfinite(value):
        return Estimate(value, problem="the fit on all runs gives no finite value")
    s = np.asarray(samples, float).ravel()
    if s.size == 0:
        return Estimate(value)
    tail = (1 - level) / 2
    failed = np.isnan(s)
    if failed.mean() > tail:
        return Estimate(value, problem=f"interval unbounded: {failed.sum()} of {s.size} bootstrap resamples gave no fit")
    s = s[~failed]
    if s.size < 2:
        return Estimate(value)
    method = "inverted_cdf" if np.isinf(s).any() else "linear"
    lo, hi = (float(v) for v in np.percentile(s, [100 * tail, 100 * (1 - tail)], method=method))
    if not (np.isfinite(lo) and np.isfinite(hi)):
        return Estimate(value, problem=f"interval unbounded: [{lo:.4g}, {hi:.4g}]")
    if not lo <= value <= hi:
        return Estimate(value, problem=f"the all-runs estimate {value:.4g} lies outside its own bootstrap interval "
                                       f"[{lo:.4g}, {hi:.4g}] (unstable under resampling)")
    return Estimate(value, lo, hi)


def resample(n: int, rng: np.random.Generator, groups=None) -> np.ndarray:
    """Indices of a bootstrap resample of n runs: n draws with replacement (within each group when
    groups are given, as many as the group has)."""
    if groups is None:
        return rng.integers(0, n, n)
    groups = np.asarray(groups)
    parts = [rng.choice(np.flatnonzero(groups == g), size=(groups == g).sum()) for g in np.unique(groups)]
    return np.concatenate(parts)


def resample_counts(n: int, rng: np.random.Generator) -> np.ndarray:
    """How often each of n runs is drawn in a resample of n with replacement (weights, sum n)."""
    return np.bincount(resample(n, rng), minlength=n).astype(float)


def bootstrap_runs(fn, frame: pd.DataFrame, n_boot: int, seed: int, *, group: str | None = "budget") -> dict:
    """Refit `fn(frame) -> dict of floats` on n_boot resamples of the rows (within each `group`);
    a resample that cannot be fitted gives NaN."""
    rng = np.random.default_rng(seed)
    groups = None if group is None else frame[group].to_numpy()
    draws = []
    for _ in range(n_boot):
        idx = resample(len(frame), rng, groups=groups)
        try:
            draws.append(fn(frame.iloc[idx]))
        except _REFIT_ERRORS:
            draws.append(None)
    keys = next((d.keys() for d in draws if d is not None), [])
    return {k: np.array([np.nan if d is None else d[k] for d in draws], float) for k in keys}


def bootstrap_best_per_budget(fit, budget, loss, n_boot: int, seed: int) -> dict:
    """Refit `fit(budgets, best loss per budget) -> dict` on n_boot resamples of the runs within each
    budget. A resample changes only which run is best at each budget and few combinations occur, so
    each distinct one is fitted once; a resample that cannot be fitted gives NaN."""
    budget, loss = np.asarray(budget, float), np.asarray(loss, float)
    values, counts = np.unique(budget, return_counts=True)
    offsets = np.concatenate([[0], np.cumsum(counts)[:-1]])
    rng = np.random.default_rng(seed)
    cache, draws = {}, []
    for _ in range(n_boot):
        best = np.minimum.reduceat(loss[resample(len(loss), rng, groups=budget)], offsets)
        key = best.tobytes()
        if key not in cache:
            try:
                cache[key] = fit(values, best)
            except _REFIT_ERRORS:
                cache[key] = None
        draws.append(cache[key])
    keys = next((d.keys() for d in draws if d is not None), [])
    return {k: np.array([np.nan if d is None else d[k] for d in draws], float) for k in keys}


def _parametric_chunk(seeds, logn, logd, logl, base_theta, screen_starts, n_starts):
    out = []
    n = len(logn)
    for seed in seeds:
        w = resample_counts(n, np.random.default_rng(seed))
        starts = [base_theta[None]]
        if n_starts:
            vals = P.objective_batch(screen_starts, logn, logd, logl, weights=w)
            starts.append(screen_starts[np.argsort(vals)[:n_starts]])
        theta, _, _ = P.minimise_from(np.vstack(starts), logn, logd, logl, weights=w, options=P.BOOTSTRAP_LBFGS,
                                       converged_only=True)
        out.append(np.full(5, np.nan) if theta is None else theta)
    return out


def bootstrap_parametric(n, d, loss, fit: P.ParametricFit, *, n_boot: int, seed: int = 0, screen: int = 64,
                         n_starts: int = BOOTSTRAP_STARTS, grid=None, n_jobs: int | None = 1) -> dict:
    """Refit L(N, D) on n_boot resamples of runs; returns samples of E, A, B, alpha, beta.

    Each refit warm-starts from the all-runs optimum plus the `n_starts` best of the `screen` grid
    starts that scored best on all runs (re-scored on the resample), with a looser L-BFGS tolerance
    than the all-runs fit (resampling noise is far larger). Resamples are run weights (counts), so no
    data is copied. One process by default: a process pool costs seconds to start, more than the
    refits of a few hundred runs; n_jobs > 1 splits the resamples over that many processes.
    """
    n, d, loss = P.check_runs(n, d, loss)
    logn, logd, logl = np.log(n), np.log(d), np.log(loss)
    starts = P.grid_starts(grid)
    screen_starts = starts[np.argsort(P.objective_batch(starts, logn, logd, logl))[:screen]]
    seeds = np.random.SeedSequence(seed).generate_state(n_boot)
    args = (logn, logd, logl, fit.theta, screen_starts, n_starts)
    if not n_jobs or n_jobs <= 1 or n_boot < 50:
        thetas = _parametric_chunk(seeds, *args)
    else:
        chunks = np.array_split(seeds, n_jobs)
        parts = Parallel(n_jobs=n_jobs)(delayed(_parametric_chunk)(c, *args) for c in chunks)
        thetas = [t for part in parts for t in part]
    t = np.array(thetas, float).reshape(-1, 5)
    with np.errstate(over="ignore"):  # a resample with a degenerate optimum (huge log A or log B) gives inf: kept as such
        return {"A": np.exp(t[:, 0]), "B": np.exp(t[:, 1]), "E": np.exp(t[:, 2]), "alpha": t[:, 3], "beta": t[:, 4]}
