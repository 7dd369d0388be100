"""Distribution of the simulator's E(3) equivariance error at the default benchmark settings.

Run: .venv/bin/python benchmarks/sim_equivariance.py [--scenes N]
For each scene a random E(3) element g (Haar rotation, reflection with probability 1/2, Gaussian
translation) is applied to the initial markers, the scene is rebuilt from them and simulated; the
error is ||simulate(g x) - g simulate(x)|| / ||simulate(x) - x|| over all markers of the scene.
"""

from __future__ import annotations

import argparse

import numpy as np

from study.benchmark.config import BenchmarkConfig
from study.benchmark.generate import available_threads
from study.benchmark.symmetry import equivariance_errors
from study.cli import run_script


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenes", type=int, default=2048)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    out = equivariance_errors(BenchmarkConfig(), scenes=args.scenes, seed=args.seed, threads=available_threads())
    err = out["error"]
    print(f"{args.scenes} scenes, {100 * out['contact'].mean():.1f}% with contacts")
    for label, mask in (("all", np.ones_like(out["reflected"])), ("rotations", ~out["reflected"]),
                        ("reflections", out["reflected"])):
        e = err[mask]
        print(f"{label:12s} n={mask.sum():5d}  median {np.median(e):.2e}  95th pct {np.percentile(e, 95):.2e}  "
              f"max {e.max():.2e}  share <= 1e-3: {100 * (e <= 1e-3).mean():.2f}%")


if __name__ == "__main__":
    raise SystemExit(run_script(main))
