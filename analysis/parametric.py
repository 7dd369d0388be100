"""Approach 3 of Hoffmann et al. (2022): L(N, D) = E + A/N^α + B/D^β fitted on log L.

The loss is a summed Huber loss (δ = 1e-3) of log-residuals, parameterised as
log L̂ = LSE(a − α log N, b − β log D, e) with A = e^a, B = e^b, E = e^e, minimised by L-BFGS with
analytic gradients from a grid of starts. Speed comes from (1) a vectorised objective + gradient,
(2) screening: the objective is evaluated at every grid start at once and L-BFGS is run from the
best screened starts in order, stopping once `CONFIRM` of them have reached the same best objective
(at most `refine`; `tests/analysis/test_parametric.py` checks it against running every start), and
(3) bootstrap resamples as weights instead of copies, refitted together by a batched
Levenberg–Marquardt (`minimise_batch`).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize
from threadpoolctl import threadpool_limits

from study.errors import EquiscaleError

DELTA = 1e-3
NAMES = ("a", "b", "e", "alpha", "beta")  # order of θ
# Hoffmann et al.'s grid: α, β ∈ {0, .5, …, 2}, e ∈ {−1, −.5, …, 1}, a, b ∈ {0, 5, …, 25}: 4,500 starts.
HOFFMANN_GRID = {
    "a": np.arange(0.0, 26.0, 5.0),
    "b": np.arange(0.0, 26.0, 5.0),
    "e": np.arange(-1.0, 1.01, 0.5),
    "alpha": np.arange(0.0, 2.01, 0.5),
    "beta": np.arange(0.0, 2.01, 0.5),
}
DEFAULT_REFINE = 250  # at most this many L-BFGS runs from the best screened starts; None: every start
CONFIRM = 3  # stop once this many starts have reached the best objective found (None: run them all) …
MIN_STARTS = 20  # … and at least this many have run (on flat, degenerate data the best start ranks ~10-40th)
LBFGS_OPTIONS = {"maxiter": 2000, "ftol": 1e-13, "gtol": 1e-9}
POLISH_OPTIONS = {"maxiter": 500, "ftol": 1e-10, "gtol": 1e-6}  # bootstrap refits the batched solver left unconverged


def grid_starts(grid: dict[str, np.ndarray] | None = None) -> np.ndarray:
    """Cartesian product of the grid as an (S, 5) array in θ order (a, b, e, α, β)."""
    grid = HOFFMANN_GRID if grid is None else grid
    return np.array(list(itertools.product(*(np.asarray(grid[k], float) for k in NAMES))))


def _huber(r: np.ndarray, delta: float) -> tuple[np.ndarray, np.ndarray]:
    """Huber loss and its derivative, both divided by δ so the objective is O(1) for L-BFGS."""
    small = np.abs(r) <= delta
    value = np.where(small, 0.5 * r * r / delta, np.abs(r) - 0.5 * delta)
    slope = np.where(small, r / delta, np.sign(r))
    return value, slope


def _terms(theta: np.ndarray, logn: np.ndarray, logd: np.ndarray) -> np.ndarray:
    """The three exponents of the log-sum-exp, (..., n, 3) for θ of shape (..., 5)."""
    a, b, e, alpha, beta = (theta[..., i, None] for i in range(5))
    return np.stack(
        [a - alpha * logn, b - beta * logd, np.broadcast_to(e, (a - alpha * logn).shape)], axis=-1
    )


def objective_batch(thetas: np.ndarray, logn, logd, logl, *, weights=None, delta: float = DELTA) -> np.ndarray:
    """Objective (summed Huber of log-residuals, /δ) for many θ at once: (S, 5) -> (S,)."""
    t = _terms(np.asarray(thetas, float), logn, logd)  # (S, n, 3)
    m = t.max(axis=-1)
    pred = m + np.log(np.exp(t - m[..., None]).sum(axis=-1))  # (S, n)
    value, _ = _huber(pred - logl, delta)
    w = 1.0 if weights is None else weights
    return (w * value).sum(axis=-1)


def objective(theta: np.ndarray, logn, logd, logl, weights=None, delta: float = DELTA):
    """Objective and its analytic gradient with respect to θ = (a, b, e, α, β)."""
    a, b, e, alpha, beta = theta
    t1, t2 = a - alpha * logn, b - beta * logd  # (n,)
    m = np.maximum(np.maximum(t1, t2), e)
    s1, s2, s3 = np.exp(t1 - m), np.exp(t2 - m), np.exp(e - m)
    total = s1 + s2 + s3
    r = m + np.log(total) - logl  # log-residuals
    small = np.abs(r) <= delta
    value = np.where(small, (0.5 / delta) * r * r, np.abs(r) - 0.5 * delta)
    slope = np.where(small, r / delta, np.sign(r))
    if weights is not None:
        value, slope = value * weights, slope * weights
    q = slope / total  # ∂f/∂LSE · 1/Σ, so ∂f/∂t_k = q · s_k
    g1, g2 = q * s1, q * s2
    grad = np.array([g1.sum(), g2.sum(), (q * s3).sum(), -(g1 @ logn), -(g2 @ logd)])
    return value.sum(), grad


@dataclass(frozen=True)
class ParametricFit:
    """A fitted L(N, D) = E + A/N^α + B/D^β (coefficients in the data's units)."""

    E: float
    A: float
    B: float
    alpha: float
    beta: float
    objective: float  # summed Huber/δ at the optimum
    n_runs: int
    starts: int  # grid starts screened
    refined: int  # L-BFGS runs
    log_params: tuple[float, float, float] | None = None  # (ln A, ln B, ln E) as fitted (E may underflow)

    @property
    def theta(self) -> np.ndarray:
        if self.log_params is not None:
            return np.array([*self.log_params, self.alpha, self.beta])
        with np.errstate(divide="ignore"):
            return np.array([np.log(self.A), np.log(self.B), np.log(self.E), self.alpha, self.beta])

    def predict(self, n, d) -> np.ndarray:
        """Predicted loss at parameters n and samples d."""
        n, d = np.asarray(n, float), np.asarray(d, float)
        return self.E + self.A / n**self.alpha + self.B / d**self.beta


def check_runs(n, d, loss) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Arrays of positive finite N, D, L of equal length, or an error naming the bad column and row."""
    cols = {"params N": n, "samples D": d, "loss": loss}
    arrays = {k: np.asarray(v, dtype=float).ravel() for k, v in cols.items()}
    lengths = {len(v) for v in arrays.values()}
    if len(lengths) != 1:
        raise EquiscaleError(f"N, D and loss have different lengths {sorted(lengths)}")
    for name, v in arrays.items():
        bad = np.flatnonzero(~np.isfinite(v) | (v <= 0))
        if bad.size:
            raise EquiscaleError(
                f"{name} must be positive and finite: row {bad[0]} is {v[bad[0]]!r} ({bad.size} bad rows)"
            )
    return arrays["params N"], arrays["samples D"], arrays["loss"]


def minimise_from(starts: np.ndarray, logn, logd, logl, *, weights=None, delta: float = DELTA,
                  confirm: int | None = None, options: dict | None = None):
    """L-BFGS from each start in order; returns (best θ, best objective, L-BFGS runs).

    confirm: stop once that many starts have reached the best objective so far (within 1e-9 relative)
    and at least MIN_STARTS have run; None runs every start.

    BLAS is held to one thread: scipy's L-BFGS-B calls BLAS on 5-vectors, and a multi-threaded BLAS
    spends ~10× the work synchronising threads (measured: 20 s -> 0.8 s for 40 starts on a busy machine).
    """
    with threadpool_limits(limits=1, user_api="blas"):
        return _minimise_from(starts, logn, logd, logl, weights, delta, confirm, options or LBFGS_OPTIONS)


def _minimise_from(starts, logn, logd, logl, weights, delta, confirm, options):
    best_x, best_f, agree, runs = None, np.inf, 0, 0
    for x0 in starts:
        res = minimize(objective, x0, args=(logn, logd, logl, weights, delta), jac=True,
                       method="L-BFGS-B", options=options)
        runs += 1
        if not np.isfinite(res.fun):
            continue
        tol = 1e-9 * max(1.0, abs(best_f)) if np.isfinite(best_f) else 0.0
        if res.fun < best_f - tol:
            best_x, best_f, agree = res.x, float(res.fun), 1
        elif res.fun <= best_f + tol:
            agree += 1
            if res.fun < best_f:
                best_x, best_f = res.x, float(res.fun)
        if confirm is not None and agree >= confirm and runs >= min(MIN_STARTS, len(starts)):
            break
    return best_x, best_f, runs


def minimise_batch(thetas: np.ndarray, logn, logd, logl, weights: np.ndarray, *, delta: float = DELTA,
                   max_iter: int = 300, rtol: float = 1e-10) -> tuple[np.ndarray, np.ndarray]:
    """Minimise many weighted objectives at once (one row of `weights` per θ start), for bootstrap refits.

    Levenberg–Marquardt on the iteratively reweighted Gauss–Newton model of the Huber loss (curvature
    ψ(r)/r = 1/max(|r|, δ)), every problem stepping together in numpy: a 5×5 solve per problem and
    iteration instead of a scipy call per problem. A problem stops when an accepted step lowers its
    objective by less than `rtol` (relative) or no step helps; returns (θ, converged) with θ (S, 5).
    logn, logd, logl: one data set (n,) for every problem, or one per problem (S, n) (hierarchical resamples).
    """
    theta = np.array(thetas, float, copy=True)
    w = np.asarray(weights, float)
    value = objective_batch(theta, logn, logd, logl, weights=w, delta=delta)
    damping = np.full(len(theta), 1e-3)
    active = np.isfinite(value)
    converged = np.zeros(len(theta), bool)
    eye = np.eye(5)
    for _ in range(max_iter):
        idx = np.flatnonzero(active)
        if idx.size == 0:
            break
        th, wi = theta[idx], w[idx]
        ln, ld, ll = (v[idx] if np.ndim(v) == 2 else v for v in (logn, logd, logl))  # per-problem data
        t = _terms(th, ln, ld)  # (s, n, 3)
        m = t.max(axis=-1)
        share = np.exp(t - m[..., None])
        total = share.sum(axis=-1)
        share /= total[..., None]
        r = m + np.log(total) - ll
        absr = np.abs(r)
        psi = np.where(absr <= delta, r / delta, np.sign(r)) * wi
        curv = wi / np.maximum(absr, delta)
        jac = np.stack([share[..., 0], share[..., 1], share[..., 2],
                        -share[..., 0] * ln, -share[..., 1] * ld], axis=-1)  # (s, n, 5)
        grad = np.einsum("sn,snk->sk", psi, jac)
        hess = np.einsum("sn,snk,snl->skl", curv, jac, jac)
        diag = np.einsum("skk->sk", hess) + 1e-12
        lhs = hess + damping[idx, None, None] * diag[:, :, None] * eye
        try:
            step = np.linalg.solve(lhs, -grad[..., None])[..., 0]
        except np.linalg.LinAlgError:
            step = -grad / diag
        trial = th + step
        new = objective_batch(trial, ln, ld, ll, weights=wi, delta=delta)
        better = np.isfinite(new) & (new < value[idx])
        gain = value[idx] - new
        theta[idx[better]] = trial[better]
        done = better & (gain <= rtol * np.maximum(1.0, value[idx]))
        value[idx[better]] = new[better]
        damping[idx[better]] = np.maximum(damping[idx[better]] / 3, 1e-9)
        damping[idx[~better]] *= 4
        stuck = ~better & (damping[idx] > 1e8)  # no step lowers the objective: at a (kinked) minimum
        converged[idx[done | stuck]] = True
        active[idx[done | stuck]] = False
    return theta, converged


def fit_parametric(n, d, loss, *, grid: dict | None = None, refine: int | None = DEFAULT_REFINE,
                   weights=None, delta: float = DELTA, confirm: int | None = CONFIRM) -> ParametricFit:
    """Fit L(N, D) from runs; L-BFGS from at most `refine` of the best screened grid starts (None: all),
    stopping once `confirm` of them agree on the best objective (None: run them all)."""
    n, d, loss = check_runs(n, d, loss)
    if len(n) < 6:
        raise EquiscaleError(f"the parametric fit needs at least 6 runs (5 parameters), got {len(n)}")
    if np.unique(n).size < 2 or np.unique(d).size < 2:
        raise EquiscaleError("the parametric fit needs runs with at least 2 distinct N and 2 distinct D")
    logn, logd, logl = np.log(n), np.log(d), np.log(loss)
    starts = grid_starts(grid)
    order = np.argsort(objective_batch(starts, logn, logd, logl, weights=weights, delta=delta), kind="stable")
    chosen = starts[order if refine is None else order[:refine]]
    theta, value, runs = minimise_from(chosen, logn, logd, logl, weights=weights, delta=delta, confirm=confirm)
    return _to_fit(theta, value, len(n), len(starts), runs)


def _to_fit(theta, value, n_runs, starts, refined) -> ParametricFit:
    if theta is None:
        raise EquiscaleError("the parametric fit did not converge from any start")
    a, b, e, alpha, beta = (float(v) for v in theta)
    with np.errstate(over="ignore", under="ignore"):
        return ParametricFit(E=float(np.exp(e)), A=float(np.exp(a)), B=float(np.exp(b)), alpha=alpha, beta=beta,
                             objective=value, n_runs=n_runs, starts=starts, refined=refined, log_params=(a, b, e))
