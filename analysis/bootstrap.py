"""Bootstrap over runs: resampling with replacement, percentile intervals, fast parametric refits."""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from analysis import parametric as P

LEVEL = 0.95


@dataclass(frozen=True)
class Estimate:
    """A point estimate (fit on all runs) with a percentile bootstrap interval."""

    value: float
    low: float = float("nan")
    high: float = float("nan")

    def as_dict(self) -> dict:
        return {"value": _num(self.value), "ci": [_num(self.low), _num(self.high)]}


def _num(x):
    x = float(x)
    return x if np.isfinite(x) else None


def estimate(value, samples, *, level: float = LEVEL) -> Estimate:
    """Point value with the (1-level)/2 and (1+level)/2 percentiles of the finite bootstrap samples."""
    s = np.asarray(samples, float)
    s = s[np.isfinite(s)]
    if s.size < 2:
        return Estimate(float(value))
    lo, hi = np.percentile(s, [50 * (1 - level), 50 * (1 + level)])
    return Estimate(float(value), float(lo), float(hi))


def resample(n: int, rng: np.random.Generator, groups=None) -> np.ndarray:
    """Indices of a bootstrap resample of n runs (within each group when groups are given)."""
    if groups is None:
        return rng.integers(0, n, n)
    groups = np.asarray(groups)
    parts = [rng.choice(np.flatnonzero(groups == g), size=(groups == g).sum()) for g in np.unique(groups)]
    return np.concatenate(parts)


def _parametric_chunk(seeds, logn, logd, logl, base_theta, screen_starts, n_starts):
    out = []
    n = len(logn)
    for seed in seeds:
        rng = np.random.default_rng(seed)
        w = np.bincount(rng.integers(0, n, n), minlength=n).astype(float)
        vals = P.objective_batch(screen_starts, logn, logd, logl, weights=w)
        starts = np.vstack([base_theta[None], screen_starts[np.argsort(vals)[:n_starts]]])
        theta, _ = P.minimise_from(starts, logn, logd, logl, weights=w)
        out.append(np.full(5, np.nan) if theta is None else theta)
    return out


def bootstrap_parametric(n, d, loss, fit: P.ParametricFit, *, n_boot: int, seed: int = 0,
                         screen: int = 64, n_starts: int = 2, grid=None, n_jobs: int | None = None) -> dict:
    """Refit L(N, D) on n_boot resamples of runs; returns samples of E, A, B, alpha, beta.

    Each refit warm-starts from the all-runs optimum plus the `n_starts` best of the `screen` grid
    starts that scored best on all runs (re-scored on the resample). Resamples are run weights
    (counts), so no data is copied; chunks run in parallel processes (n_jobs, default: CPU count).
    """
    n, d, loss = P.check_runs(n, d, loss)
    logn, logd, logl = np.log(n), np.log(d), np.log(loss)
    starts = P.grid_starts(grid)
    screen_starts = starts[np.argsort(P.objective_batch(starts, logn, logd, logl))[:screen]]
    seeds = np.random.SeedSequence(seed).generate_state(n_boot)
    n_jobs = min(os.cpu_count() or 1, 8) if n_jobs is None else n_jobs
    args = (logn, logd, logl, fit.theta, screen_starts, n_starts)
    if n_jobs <= 1 or n_boot < 50:
        thetas = _parametric_chunk(seeds, *args)
    else:
        from joblib import Parallel, delayed

        chunks = np.array_split(seeds, n_jobs)
        parts = Parallel(n_jobs=n_jobs)(delayed(_parametric_chunk)(c, *args) for c in chunks)
        thetas = [t for part in parts for t in part]
    t = np.array(thetas, float).reshape(-1, 5)
    with np.errstate(over="ignore"):  # a resample with a degenerate optimum (huge log A or log B) gives inf: kept as such
        return {"A": np.exp(t[:, 0]), "B": np.exp(t[:, 1]), "E": np.exp(t[:, 2]), "alpha": t[:, 3], "beta": t[:, 4]}
