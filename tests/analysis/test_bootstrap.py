"""The bootstrap resamples runs with replacement, as many as there are, per family (within each budget
where the statistic is per budget), checked against the multinomial's moments, an analytic bootstrap
variance and a bootstrap written here from copies of the data."""

import numpy as np
import pandas as pd
import pytest

from analysis import parametric as P
from analysis.bootstrap import bootstrap_parametric, bootstrap_runs, estimate, resample, resample_counts
from tests.analysis.synthetic import Truth, draw_runs

SIZES = (5, 12, 30)


def test_resample_draws_each_group_with_replacement_as_often_as_it_has_runs():
    groups = np.repeat([1e12, 1e13, 1e14], SIZES)
    rng = np.random.default_rng(0)
    counts = np.array([np.bincount(resample(len(groups), rng, groups=groups), minlength=len(groups))
                       for _ in range(4000)])
    for g, size in zip(np.unique(groups), SIZES):
        own = counts[:, groups == g]
        assert np.all(own.sum(axis=1) == size)  # exactly as many draws as the group has runs, from it only
        # with replacement: each run is drawn Binomial(size, 1/size) times
        assert own.mean() == pytest.approx(1.0, abs=0.03)
        assert own.var() == pytest.approx(1 - 1 / size, rel=0.08)
        assert np.mean(own == 0) == pytest.approx((1 - 1 / size) ** size, abs=0.02)


def test_resample_counts_are_n_draws_with_replacement():
    n = 40
    rng = np.random.default_rng(1)
    counts = np.array([resample_counts(n, rng) for _ in range(4000)])
    assert np.all(counts.sum(axis=1) == n) and np.all(counts == np.round(counts))
    assert counts.var() == pytest.approx(1 - 1 / n, rel=0.05)
    assert np.mean(counts == 0) == pytest.approx((1 - 1 / n) ** n, abs=0.01)


def test_bootstrap_of_a_mean_within_budgets_has_the_analytic_variance():
    """Resampling within budgets: Var*(mean) = Σ_g (n_g/n)² σ_g²/n_g (σ_g² with ddof 0). Budgets with very
    different means make resampling across budgets (or without replacement) visibly wrong."""
    rng = np.random.default_rng(2)
    groups = np.repeat([1e12, 1e13, 1e14], SIZES)
    loss = np.concatenate([rng.normal(mu, sd, k) for mu, sd, k in zip((1.0, 5.0, 9.0), (0.3, 1.0, 0.5), SIZES)])
    frame = pd.DataFrame({"budget": groups, "loss": loss})
    draws = bootstrap_runs(lambda f: {"mean": f["loss"].mean()}, frame, 3000, seed=3)["mean"]
    n = len(loss)
    analytic = sum((k / n) ** 2 * loss[groups == g].var() / k for g, k in zip(np.unique(groups), SIZES))
    assert np.std(draws) == pytest.approx(np.sqrt(analytic), rel=0.06)
    assert np.mean(draws) == pytest.approx(loss.mean(), abs=0.02)


def test_parametric_bootstrap_spread_matches_a_bootstrap_of_copied_runs():
    """The weighted, batched refits against the textbook bootstrap: copy n runs drawn with replacement
    and refit each copy with scipy's L-BFGS (`P.minimise_from`). Spreads agree within sampling error
    (200 draws each: ±7%); half- or double-size resamples would be off by √2."""
    truth = Truth(E=0.2, A=60.0, B=200.0, alpha=0.34, beta=0.37)
    _, n, d, loss = draw_runs(truth, np.geomspace(1e13, 1e17, 5), 12, noise=0.03, seed=7, spread=100.0)
    fit = P.fit_parametric(n, d, loss, refine=10)
    ours = bootstrap_parametric(n, d, loss, fit, n_boot=200, seed=11)
    rng = np.random.default_rng(12)
    copies = []
    for _ in range(200):
        i = rng.choice(len(n), size=len(n), replace=True)
        theta, _, _ = P.minimise_from(fit.theta[None], np.log(n[i]), np.log(d[i]), np.log(loss[i]))
        copies.append(theta)
    copies = np.array(copies)
    for key, col in (("alpha", 3), ("beta", 4)):
        assert np.isfinite(ours[key]).all()
        ratio = np.std(ours[key]) / np.std(copies[:, col])
        assert 0.78 <= ratio <= 1.28, (key, ratio)
        assert np.median(ours[key]) == pytest.approx(np.median(copies[:, col]), abs=0.5 * np.std(copies[:, col]))


def test_estimate_says_why_instead_of_a_number():
    assert estimate(1.0, np.linspace(0.9, 1.1, 100)).has_interval
    outside = estimate(2.0, np.linspace(0.9, 1.1, 100))
    assert "outside its own bootstrap interval" in outside.problem and outside.as_dict()["value"] is None
    failed = estimate(1.0, np.r_[np.linspace(0.9, 1.1, 90), [np.nan] * 10])
    assert "10 of 100 bootstrap resamples gave no fit" in failed.problem
    infinite = estimate(1.0, np.r_[np.linspace(0.9, 1.1, 90), [np.inf] * 10])
    assert "unbounded" in infinite.problem
    assert "unbounded in effect" in estimate(1.0, np.r_[np.zeros(5), np.linspace(0.5, 2.0, 95)], positive=True).problem
    assert "unbounded in effect" in estimate(1.0, np.geomspace(1e-4, 1e4, 100), positive=True).problem
    assert estimate(np.nan, []).problem and "nan" not in estimate(np.nan, []).text().lower()
