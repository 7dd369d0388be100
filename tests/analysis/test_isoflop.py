"""Approach 2: parabola vertices, power laws through them, and the too-little-data errors."""

import numpy as np
import pytest

from analysis.allocation import FlopsModel
from analysis.isoflop import fit_isoflop
from study.errors import EquiscaleError
from tests.analysis.synthetic import Truth, draw_runs


def test_exact_parabolas_give_their_vertices_and_exact_power_laws():
    budgets, n, loss = [], [], []
    for c in (1e12, 1e13, 1e14, 1e15):
        x_opt = np.log(2e-3 * c**0.6)  # N_opt = 2e-3 · C^0.6
        x = x_opt + np.linspace(-2, 2, 7)
        budgets += [c] * 7
        n += list(np.exp(x))
        loss += list(3.0 * c**-0.1 + 0.05 * (x - x_opt) ** 2)
    fit = fit_isoflop(budgets, n, loss, model=FlopsModel(K=6.0))
    assert fit.a == pytest.approx(0.6, abs=1e-9) and fit.n_coef == pytest.approx(2e-3, rel=1e-6)
    assert fit.b == pytest.approx(0.4, abs=1e-9)  # D = C / (6 N)
    assert fit.l_exp == pytest.approx(0.1, abs=1e-9) and fit.l_coef == pytest.approx(3.0, rel=1e-6)


def test_recovers_allocation_exponent_of_a_known_law():
    truth = Truth(E=0.2, A=60.0, B=200.0, alpha=0.34, beta=0.37)
    budget, n, d, loss = draw_runs(truth, np.geomspace(1e13, 1e17, 5), 15, noise=0.0, spread=10.0)
    fit = fit_isoflop(budget, n, loss, model=FlopsModel())
    assert fit.a == pytest.approx(truth.beta / (truth.alpha + truth.beta), abs=0.02)


def test_fewer_than_three_budgets():
    with pytest.raises(EquiscaleError, match="at least 3 budgets, got 2"):
        fit_isoflop([1e12] * 4 + [1e13] * 4, np.arange(1, 9) * 1e4, np.ones(8))


def test_budget_with_too_few_trials_is_named():
    budget = [1e12] * 4 + [1e13] * 4 + [1e14] * 2
    with pytest.raises(EquiscaleError, match=r"1e\+14 \(2\)"):
        fit_isoflop(budget, np.arange(1, 11) * 1e4, np.ones(10))


def test_non_convex_budget_is_an_error():
    n = np.array([1e4, 1e5, 1e6] * 3)
    loss = np.array([1.0, 2.0, 1.0] * 3)  # a maximum, not a minimum
    with pytest.raises(EquiscaleError, match="opens downwards"):
        fit_isoflop([1e12] * 3 + [1e13] * 3 + [1e14] * 3, n, loss)
