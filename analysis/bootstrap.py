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
# synthetic and Chinchilla runs, an extra start changed no interval and doubled the time.
BOOTSTRAP_STARTS = 0
_REFIT_ERRORS = (EquiscaleError, np.linalg.LinAlgError, ValueError, FloatingPointError)


def cached_fit(cache: dict, fit, x: np.ndarray, y: np.ndarray):
    """`fit(x, y)` of one resample, computed once per distinct (x, y) (resamples repeat); None where it fails."""
    key = y.tobytes() + x.tobytes()
    if key not in cache:
        try:
            cache[key] = fit(x, y)
        except _REFIT_ERRORS:
            cache[key] = None
    return cache[key]


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


MAX_DECADES = 6  # a positive quantity whose interval spans more than this many decades is unbounded in effect


def estimate(value, samples, *, level: float = LEVEL, problem: str = "", positive: bool = False) -> Estimate:
    """Point value with the (1-level)/2 and (1+level)/2 percentiles of the bootstrap samples.

    Not identified (`problem` set) when the point value is not finite, when more than (1-level)/2 of the
    resamples gave no fit (NaN), when a percentile is infinite (the interval is unbounded), or when the
    point value lies outside its own interval (the fit is unstable under resampling). positive: the
    quantity is a size or scale, so an interval reaching 0 or spanning more than MAX_DECADES decades
    is unbounded too.
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
    if positive and not (lo > 0 and hi <= lo * 10.0**MAX_DECADES):
        return Estimate(value, problem=f"interval unbounded in effect: [{lo:.4g}, {hi:.4g}] "
                                       f"(reaches 0 or spans more than {MAX_DECADES} decades)")
    slack = 1e-6 * max(abs(value), abs(lo), abs(hi))  # refits converge to ~1e-8: a noiseless fit's draws tie
    if not lo - slack <= value <= hi + slack:
        return Estimate(value, problem=f"the all-runs estimate {value:.4g} lies outside its own bootstrap interval "
                                       f"[{lo:.4g}, {hi:.4g}] (unstable under resampling)")
    return Estimate(value, min(lo, value), max(hi, value))


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


def bootstrap_best_per_budget(fit, budget, loss, n_boot: int, seed: int, *, compute=None) -> dict:
    """Refit `fit(x, best loss per budget) -> dict` on n_boot resamples of the runs within each budget;
    x = the budgets, or with `compute` (one value per run: its compute on another axis) the compute of the
    run that is best at each budget. A resample changes only which run is best at each budget and few
    combinations occur, so each distinct one is fitted once; a resample that cannot be fitted gives NaN."""
    budget, loss = np.asarray(budget, float), np.asarray(loss, float)
    values, counts = np.unique(budget, return_counts=True)
    offsets = np.concatenate([[0], np.cumsum(counts)[:-1]])
    x_of = None if compute is None else np.asarray(compute, float)
    rng = np.random.default_rng(seed)
    cache, draws = {}, []
    for _ in range(n_boot):
        idx = resample(len(loss), rng, groups=budget)
        drawn = loss[idx]
        best = np.minimum.reduceat(drawn, offsets)
        x = values
        if x_of is not None:  # the compute of each budget's best drawn run (first of equals)
            x = np.array([x_of[idx[o + np.argmin(drawn[o:o + k])]] for o, k in zip(offsets, counts)])
        draws.append(cached_fit(cache, fit, x, best))
    keys = next((d.keys() for d in draws if d is not None), [])
    return {k: np.array([np.nan if d is None else d[k] for d in draws], float) for k in keys}


def _parametric_chunk(seeds, logn, logd, logl, base_theta, screen_starts, n_starts):
    """θ (len(seeds), 5) of the resamples drawn from `seeds`: batched Levenberg–Marquardt from every
    start; a resample where none converged is finished by L-BFGS from its best point (NaN if that fails)."""
    n, k, r = len(logn), 1 + n_starts, len(seeds)
    weights = np.array([resample_counts(n, np.random.default_rng(s)) for s in seeds])
    starts = np.repeat(base_theta[None], r * k, axis=0).reshape(r, k, 5)
    if n_starts:
        scores = P.objective_batch(screen_starts, logn, logd, logl, weights=weights[:, None, :])  # (R, screen)
        starts[:, 1:] = screen_starts[np.argsort(scores, axis=1)[:, :n_starts]]
    wk = np.repeat(weights, k, axis=0)
    theta, ok = P.minimise_batch(starts.reshape(-1, 5), logn, logd, logl, wk)
    value = P.objective_batch(theta, logn, logd, logl, weights=wk)
    value, theta, ok = value.reshape(r, k), theta.reshape(r, k, 5), ok.reshape(r, k)
    best = np.argmin(np.where(ok, value, np.inf), axis=1)
    out = theta[np.arange(r), best]
    for i in np.flatnonzero(~ok.any(axis=1)):
        order = np.argsort(np.where(np.isfinite(value[i]), value[i], np.inf))
        polished, _, _ = P.minimise_from(theta[i, order[:1]], logn, logd, logl, weights=weights[i],
                                         options=P.POLISH_OPTIONS)
        out[i] = np.nan if polished is None else polished
    return out


def bootstrap_parametric(n, d, loss, fit: P.ParametricFit, *, n_boot: int, seed: int = 0, screen: int = 64,
                         n_starts: int = BOOTSTRAP_STARTS, grid=None, n_jobs: int | None = 1,
                         chunk: int = 50) -> dict:
    """Refit L(N, D) on n_boot resamples of runs; returns samples of E, A, B, alpha, beta.

    Each refit starts from the all-runs optimum plus the `n_starts` best of the `screen` grid starts
    that scored best on all runs (re-scored on the resample). Resamples are run weights (counts), so no
    data is copied, and `chunk` of them are minimised together (`P.minimise_batch`). One process by default: a pool costs seconds
    to start, more than the refits of a few hundred runs; n_jobs > 1 spreads the chunks over processes.
    """
    n, d, loss = P.check_runs(n, d, loss)
    logn, logd, logl = np.log(n), np.log(d), np.log(loss)
    screen_starts = np.empty((0, 5))
    if n_starts:
        starts = P.grid_starts(grid)
        screen_starts = starts[np.argsort(P.objective_batch(starts, logn, logd, logl))[:screen]]
    seeds = np.random.SeedSequence(seed).generate_state(n_boot)
    args = (logn, logd, logl, fit.theta, screen_starts, n_starts)
    chunks = [seeds[i:i + chunk] for i in range(0, n_boot, chunk)]
    if not n_jobs or n_jobs <= 1 or len(chunks) < 2:
        parts = [_parametric_chunk(c, *args) for c in chunks]
    else:
        parts = Parallel(n_jobs=n_jobs)(delayed(_parametric_chunk)(c, *args) for c in chunks)
    t = np.concatenate(parts).reshape(-1, 5) if parts else np.empty((0, 5))
    with np.errstate(over="ignore"):  # a resample with a degenerate optimum (huge log A or log B) gives inf: kept as such
        return {"A": np.exp(t[:, 0]), "B": np.exp(t[:, 1]), "E": np.exp(t[:, 2]), "alpha": t[:, 3], "beta": t[:, 4]}
