"""Approach-3 fit speed on the Chinchilla runs (240 after leaving out the five highest losses).

Prints: the default fit (all 4,500 Hoffmann grid starts screened, L-BFGS with analytic gradients from
the best 250), 1,000 bootstrap refits, and the ratio to a naive scipy fit (numerical gradients, every
start) measured on a sample of starts. `--full-grid` also runs L-BFGS from all 4,500 starts and
checks that the screened fit reaches the same optimum.

    .venv/bin/python benchmarks/fit.py [--csv PATH] [--boot 1000] [--naive-sample 30] [--full-grid]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.optimize import minimize
from scipy.special import huber, logsumexp
from threadpoolctl import threadpool_limits

from analysis import parametric as P
from analysis.bootstrap import bootstrap_parametric
from study.cli import run_script

CSV = Path(__file__).resolve().parents[1] / "validation" / "chinchilla_figure4.csv"


def _timed(fn):
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - wall, time.process_time() - cpu


def _naive_objective(theta, logn, logd, logl):
    """The textbook version: scipy.special.huber on log-residuals, no gradient (scipy differences it)."""
    a, b, e, alpha, beta = theta
    pred = logsumexp([a - alpha * logn, b - beta * logd, np.full_like(logn, e)], axis=0)
    return huber(P.DELTA, pred - logl).sum()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--csv", default=str(CSV))
    parser.add_argument("--boot", type=int, default=1000)
    parser.add_argument("--naive-sample", type=int, default=30)
    parser.add_argument("--full-grid", action="store_true")
    args = parser.parse_args()

    table = pd.read_csv(args.csv).sort_values("loss").iloc[:-5]
    n = table["params"].to_numpy(float)
    d, loss = table["training_flops"].to_numpy(float) / (6 * n), table["loss"].to_numpy(float)
    logs = (np.log(n), np.log(d), np.log(loss))
    print(f"{len(n)} runs; grid {len(P.grid_starts())} starts; L-BFGS from the best {P.DEFAULT_REFINE}")

    fit, wall, cpu = _timed(lambda: P.fit_parametric(n, d, loss))
    print(f"default fit: {wall:.2f} s wall ({cpu:.2f} s CPU): E={fit.E:.4f} A={fit.A:.2f} B={fit.B:.2f} "
          f"alpha={fit.alpha:.4f} beta={fit.beta:.4f}")
    per_start = wall / fit.refined

    samples, bwall, bcpu = _timed(lambda: bootstrap_parametric(n, d, loss, fit, n_boot=args.boot, seed=0))
    ok = np.isfinite(samples["alpha"]).sum()
    print(f"{args.boot} bootstrap refits: {bwall:.2f} s wall ({bcpu:.2f} s CPU in the driver), {ok} converged; "
          + ", ".join(f"sd {k} {np.std(v):.4g}" for k, v in samples.items()))

    rng = np.random.default_rng(0)
    sample = P.grid_starts()[rng.choice(4500, args.naive_sample, replace=False)]
    with threadpool_limits(limits=1, user_api="blas"):
        _, nwall, _ = _timed(lambda: [minimize(_naive_objective, x0, args=logs, method="L-BFGS-B") for x0 in sample])
        _, awall, _ = _timed(lambda: P.minimise_from(sample, *logs))
    naive_full = nwall / args.naive_sample * 4500
    print(f"naive (numerical gradients), {args.naive_sample} random starts: {nwall / args.naive_sample * 1e3:.1f} ms/start "
          f"-> {naive_full:.0f} s for the full grid; analytic gradients on the same starts: "
          f"{awall / args.naive_sample * 1e3:.1f} ms/start ({nwall / awall:.1f}x faster per start)")
    print(f"default fit vs naive full grid: {naive_full / wall:.0f}x faster "
          f"(per refined start {per_start * 1e3:.1f} ms incl. screening)")

    if args.full_grid:
        (theta, value, _), fwall, _ = _timed(lambda: P.minimise_from(P.grid_starts(), *logs))
        same = np.allclose(theta, fit.theta, atol=1e-4)
        print(f"full grid (L-BFGS from all 4,500 starts): {fwall:.1f} s; objective {value:.10f} vs screened "
              f"{fit.objective:.10f}; same optimum: {same}")


if __name__ == "__main__":
    raise SystemExit(run_script(main))
