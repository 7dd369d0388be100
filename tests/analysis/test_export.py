"""The allocation export against an independently written FLOP model C(N, D) = K·N^(1+κ)·D and the
known optimum of a synthetic law: swapped N and D, a wrong C(N, D) or swapped law constants fail."""

import numpy as np
import pandas as pd
import pytest

from analysis.export import allocation_table, render
from analysis.laws import fit_family
from tests.analysis.synthetic import Truth, draw_runs

K, KAPPA, BATCH = 7.0, -0.02, 64
TRUTH = Truth(E=0.2, A=60.0, B=400.0, alpha=0.30, beta=0.36, K=K, kappa=KAPPA)
TRAINED = np.geomspace(1e13, 1e17, 5)


def flops(n, d):
    """Training FLOPs of the synthetic family, written here and nowhere else."""
    return 7.0 * n**0.98 * d


@pytest.fixture(scope="module")
def table():
    budget, n, d, loss = draw_runs(TRUTH, TRAINED, 15, noise=0.0, spread=10.0)
    frame = pd.DataFrame({"family": "gatr", "budget": budget, "params": n, "samples": d,
                          "flops": flops(n, d), "loss": loss})
    laws = {"gatr": fit_family(frame, family="gatr", n_boot=0, refine=10, batch_size=BATCH)}
    return allocation_table(laws, [1e14, 1e16, 1e18])


@pytest.mark.parametrize("approach", ["parametric", "isoflop"])
def test_exported_allocation_spends_the_budget_at_the_known_optimum(table, approach):
    rows = table[table["approach"] == approach]
    c, n, d = rows["budget"].to_numpy(), rows["N_opt"].to_numpy(), rows["D_opt"].to_numpy()
    np.testing.assert_allclose(flops(n, d), c, rtol=1e-6)  # N_opt·D_opt spends exactly the budget
    # the optimum of E + A/N^α + B/D^β on C = 7·N^0.98·D, minimised numerically here
    for budget, n_opt in zip(c, n):
        grid = np.exp(np.linspace(np.log(n_opt) - 3, np.log(n_opt) + 3, 20001))
        best = grid[np.argmin(TRUTH.loss(grid, budget / (7.0 * grid**0.98)))]
        assert n_opt == pytest.approx(best, rel=0.03 if approach == "isoflop" else 2e-3)
    np.testing.assert_allclose(rows["steps_opt"], d / BATCH, rtol=1e-12)


def test_sizes_outside_the_trained_runs_are_marked(table):
    inside = table[table["budget"] == 1e16]
    beyond = table[table["budget"] == 1e18]
    assert (inside["extrapolation"] == "").all()
    assert beyond["extrapolation"].str.contains("above the largest trained").all()
    md = render(table, "md")
    assert "*extrapolation:" in md and "nan" not in md.lower()
