"""Compute-optimal allocation: closed form against numerical minimisation, FLOP-model fit."""

import numpy as np
import pytest
from scipy.optimize import minimize_scalar

from analysis.allocation import FlopsModel, allocation_exponents, optimal_allocation
from study.errors import EquiscaleError

LAW = {"A": 406.4, "B": 410.7, "alpha": 0.34, "beta": 0.28}


def _loss(n, d, E=1.69):
    return E + LAW["A"] / n ** LAW["alpha"] + LAW["B"] / d ** LAW["beta"]


@pytest.mark.parametrize("model", [FlopsModel(), FlopsModel(K=7.3, kappa=0.05), FlopsModel(K=9.0, kappa=-0.08)])
@pytest.mark.parametrize("c", [1e18, 1e21, 1e24])
def test_closed_form_minimises_loss_on_the_compute_constraint(model, c):
    n_opt, d_opt = optimal_allocation(c, **LAW, model=model)
    assert model.flops(n_opt, d_opt) == pytest.approx(c, rel=1e-10)
    res = minimize_scalar(lambda x: _loss(np.exp(x), model.samples(np.exp(x), c)), bounds=(5, 40),
                          method="bounded", options={"xatol": 1e-10})
    assert np.log(n_opt) == pytest.approx(res.x, abs=1e-4)


def test_hoffmann_constants_at_6nd():
    """κ = 0, K = 6: N_opt = G (C/6)^a with G = (αA/(βB))^(1/(α+β)), a = β/(α+β)."""
    a, b = allocation_exponents(LAW["alpha"], LAW["beta"])
    g = (LAW["alpha"] * LAW["A"] / (LAW["beta"] * LAW["B"])) ** (1 / (LAW["alpha"] + LAW["beta"]))
    n_opt, _ = optimal_allocation(1e22, **LAW)
    assert n_opt == pytest.approx(g * (1e22 / 6) ** a, rel=1e-12)
    assert a + b == pytest.approx(1.0)


@pytest.mark.parametrize("model", [FlopsModel(), FlopsModel(K=7.3, kappa=0.05)])
def test_exponents_are_the_slopes_of_the_allocation(model):
    a, b = allocation_exponents(LAW["alpha"], LAW["beta"], model)
    c = np.array([1e19, 1e23])
    n, d = optimal_allocation(c, **LAW, model=model)
    assert np.diff(np.log(n))[0] / np.diff(np.log(c))[0] == pytest.approx(a, rel=1e-10)
    assert np.diff(np.log(d))[0] / np.diff(np.log(c))[0] == pytest.approx(b, rel=1e-10)


def test_flops_model_recovered_from_runs():
    rng = np.random.default_rng(0)
    n = np.exp(rng.uniform(np.log(1e4), np.log(1e8), 50))
    d = np.exp(rng.uniform(10, 20, 50))
    model = FlopsModel.from_runs(n, d, 5.5 * n**1.04 * d)
    assert model.K == pytest.approx(5.5, rel=1e-9) and model.kappa == pytest.approx(0.04, abs=1e-12)


def test_negative_exponent_cannot_allocate():
    with pytest.raises(EquiscaleError, match="positive"):
        optimal_allocation(1e20, A=1.0, B=1.0, alpha=-0.1, beta=0.3)
