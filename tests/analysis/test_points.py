"""Points (replicates averaged over seeds) and the hierarchical bootstrap, checked against independent
computations: the bootstrap recovers a known between-seed variance, and a bootstrap that ignores seeds does not;
the bracketing rule; the lr-inside-range check."""

import numpy as np
import pandas as pd
import pytest

from analysis.isoflop import bracket, fit_isoflop
from analysis.points import Points, bootstrap_best, point_ids
from analysis.ratios import best_ratios
from analysis.replicates import fit_lr_law, lr_sweeps
from study.errors import EquiscaleError

SIGMA = 0.02


def _replicated(means, seeds, rng, sigma=SIGMA, budget=1e12, family="f"):
    """Rows of points (one per mean) with `seeds` seeds each: loss = mean · (1 + sigma · N(0, 1))."""
    rows = []
    for j, m in enumerate(means):
        for s in range(seeds):
            rows.append({"family": family, "budget": budget, "params": 1e4 * (j + 1), "samples": 1e6, "lr": 1e-3,
                         "shape": {"width": j}, "seed": s, "loss": m * (1 + sigma * rng.normal()),
                         "test_loss": m * 1.01, "compute": budget})
    return pd.DataFrame(rows)


def test_trials_of_one_shape_and_lr_are_one_point_and_unseeded_trials_their_own():
    rng = np.random.default_rng(0)
    frame = _replicated([1.0, 2.0], 3, rng)
    points = Points.of(frame)
    assert list(points.count) == [3, 3] and list(points.frame["seeds"]) == [3, 3]
    for j in range(2):
        seeds = frame["loss"].to_numpy()[3 * j:3 * j + 3]
        assert points.frame["loss"].iloc[j] == pytest.approx(seeds.mean())
        assert points.frame["loss_sd"].iloc[j] == pytest.approx(np.std(seeds, ddof=1))
    other_lr = frame.assign(lr=[1e-3, 1e-3, 2e-3, 1e-3, 1e-3, 1e-3])            # another lr: another point
    assert len(Points.of(other_lr)) == 3
    unseeded = frame.assign(seed=np.nan)                                       # a study from before replicates
    assert list(point_ids(unseeded)) == list(range(6)) and not Points.of(unseeded).replicated


def _boot_sd(frame, n_boot, seed, seeds=True):
    points = Points.of(frame)
    draws = bootstrap_best(lambda x, best: {"best": best[0]}, points, n_boot, seed, seeds=seeds)["best"]
    return np.std(draws)


def test_hierarchical_bootstrap_recovers_the_between_seed_variance_and_ignoring_seeds_does_not():
    """A budget whose best point has n seeds with a known between-seed SD σ·m: the bootstrap SD of the budget's
    best mean must be σ·m/√n (times √((n−1)/n), the bootstrap's plug-in variance), averaged over many data sets.
    The other points lie far above, so which point is best never changes. Resampling points only (seeds
    ignored) gives an SD of 0: it fails the same test."""
    n, m, reps = 8, 1.0, 60
    rng = np.random.default_rng(1)
    expected = SIGMA * m / np.sqrt(n) * np.sqrt((n - 1) / n)
    ours, ignoring = [], []
    for r in range(reps):
        frame = _replicated([m], n, rng)                        # one point: point resampling cannot move it
        ours.append(_boot_sd(frame, 300, r) ** 2)
        ignoring.append(_boot_sd(frame, 300, r, seeds=False) ** 2)
    assert np.sqrt(np.mean(ours)) == pytest.approx(expected, rel=0.1)
    assert np.sqrt(np.mean(ignoring)) < 0.1 * expected


def test_points_are_resampled_within_budgets_and_seeds_within_points():
    """With 4 points of n seeds per budget: each copy's seeds come from its own point, each point's drawn mean has
    the bootstrap variance of its own seeds' mean (σ̂²(n−1)/n² with σ̂ its sample SD), and the best point is left out
    of a resample as often as (1 − 1/4)^4."""
    rng = np.random.default_rng(2)
    n, means = 6, [1.0, 1.3, 1.6, 1.9]
    frame = pd.concat([_replicated(means, n, rng, budget=b) for b in (1e12, 1e13)], ignore_index=True)
    points = Points.of(frame)
    draws = [points.draw(np.random.default_rng([3, i])) for i in range(3000)]
    budget = points.frame["budget"].to_numpy()
    for d in draws[:50]:
        assert (budget[d.copies] == np.repeat([1e12, 1e13], 4)).all()            # as many per budget as it has
        owner = np.repeat(d.copies, d.count)
        assert (points.trials["shape"].iloc[d.members].map(lambda s: s["width"]).to_numpy()
                == points.frame["shape"].iloc[owner].map(lambda s: s["width"]).to_numpy()).all()
    for j in range(len(points)):
        drawn = np.concatenate([points.mean(d, "loss")[d.copies == j] for d in draws])
        seeds = points.value("loss")[points.start[j]:points.start[j] + n]
        assert np.var(drawn) == pytest.approx(np.var(seeds) / n, rel=0.15)        # ddof 0: the plug-in variance
    left_out = np.mean([0 not in d.copies for d in draws])
    assert left_out == pytest.approx((1 - 1 / 4) ** 4, abs=0.03)


def test_ratio_interval_includes_seed_noise():
    """One point per family at a budget, n seeds each with relative SD σ: the ratio of means has SD ≈
    σ·√(2/n)·√((n−1)/n) (delta method), so its 95% interval spans ≈ 2·1.96 of that; without seeds there is none."""
    rng = np.random.default_rng(4)
    n, widths = 10, []
    for r in range(20):
        frame = pd.concat([_replicated([1.0], n, rng, family="a"), _replicated([1.2], n, rng, family="b")])
        (ratio,) = best_ratios(frame, by="budget", numerator="a", denominator="b", n_boot=400, seed=r)
        assert ratio.estimate.has_interval
        widths.append((ratio.estimate.high - ratio.estimate.low) / ratio.estimate.value)
    expected = 2 * 1.96 * SIGMA * np.sqrt(2 / n) * np.sqrt((n - 1) / n)
    assert np.mean(widths) == pytest.approx(expected, rel=0.2)
    (plain,) = best_ratios(frame.assign(seed=np.nan).groupby("family").head(1), by="budget", numerator="a",
                           denominator="b", n_boot=400)
    assert not plain.estimate.has_interval and "single run" in plain.why_no_interval()


def test_bracketing_rule_rejects_a_best_point_at_the_smallest_size_even_when_the_parabola_reaches_inside():
    """Issue 21: a budget whose best point is the grid's smallest size was counted as bracketed because the window's
    parabola had its vertex inside the trained sizes. Under the one rule it is not bracketed."""
    n = np.logspace(4, 6, 5)
    edge = np.array([1.0, 1.0005, 1.3, 1.6, 2.0])                   # best at the smallest size
    x = np.log(n[:3])
    c2, c1, _ = np.polyfit(x, edge[:3], 2)
    assert c2 > 0 and n[0] < np.exp(-c1 / (2 * c2)) < n[-1]        # the old check (vertex inside) would accept it
    rule = bracket(n, edge)
    assert not rule.bracketed and "smallest trained size" in rule.why
    ok = np.array([1.3, 1.0, 1.05, 1.3, 1.6])
    assert bracket(n, ok).bracketed and bracket(n, ok).below == n[0] and bracket(n, ok).above == n[2]
    assert not bracket(n, ok[::-1] * 0 + np.array([2.0, 1.6, 1.3, 1.1, 1.0])).bracketed   # best at the largest
    budgets = np.repeat([1e12, 1e13, 1e14, 1e15], 5)
    fit = fit_isoflop(budgets, np.tile(n, 4), np.concatenate([ok, ok, ok, edge]))
    assert list(fit.rejected) == [1e15] and "not bracketed" in fit.rejected[1e15]
    with pytest.raises(EquiscaleError, match="2 of 4 budgets bracket"):
        fit_isoflop(budgets, np.tile(n, 4), np.concatenate([ok, ok, edge, edge]))


def test_bracketing_uses_the_mean_over_seeds():
    """A point whose single best seed is lowest but whose mean is not does not decide the bracket."""
    rows = []
    for j, (n, seeds) in enumerate([(1e4, [1.0, 1.3, 1.3]), (3e4, [1.1, 1.1, 1.1]), (1e5, [1.2, 1.2, 1.2])]):
        rows += [{"budget": 1e12, "params": n, "loss": v, "lr": 1e-3, "shape": {"w": j}, "seed": s}
                 for s, v in enumerate(seeds)]
    points = Points.of(pd.DataFrame(rows)).frame
    assert bracket(points["params"], points["loss"]).bracketed                   # mean 1.2 at 1e4: 3e4 is best
    single = pd.DataFrame(rows).assign(seed=np.nan)                              # as separate runs: 1e4 is best
    assert not bracket(single["params"], single["loss"]).bracketed


def _sweep_frame(lr_factors_by_budget, gamma=-0.3, lr0=1e-2, rule=7e-3):
    rows = []
    for c, factors in lr_factors_by_budget.items():
        lr_opt = lr0 * (c / 1e12) ** gamma
        for j, n in enumerate((1e4, 3e4, 1e5)):       # the profile at the rule lr: the middle size is best
            rows.append({"budget": c, "params": n, "loss": 1.0 + 0.1 * (j - 1) ** 2, "lr": rule, "rule_lr": rule,
                         "shape": {"w": j}, "seed": len(rows), "compute": c})
        for f in factors:                           # the sweep at the best size
            lr = lr_opt * f
            rows.append({"budget": c, "params": 3e4, "loss": 0.9 + 0.05 * np.log(f) ** 2, "lr": lr,
                         "rule_lr": rule, "shape": {"w": 1}, "seed": len(rows), "compute": c})
    return pd.DataFrame(rows)


def test_lr_opt_law_and_the_inside_check():
    budgets = [1e12, 1e13, 1e14, 1e15]
    sweeps = {c: (0.5, 1.0, 2.0) for c in budgets}
    sweeps[1e14] = (1.0, 2.0, 4.0)                    # its best lr is the lowest tried
    points = Points.of(_sweep_frame(sweeps))
    found = {s.budget: s for s in lr_sweeps(points)}
    for c in budgets:
        assert found[c].best_lr == pytest.approx(1e-2 * (c / 1e12) ** -0.3)
        assert found[c].params == 3e4 and len(found[c].tried) == 4            # three factors and the rule lr
        assert found[c].profile_best == 3e4
    assert [c for c in budgets if not found[c].inside] == [1e14]
    assert "lowest" in found[1e14].why_not_inside()
    law = fit_lr_law(points, n_boot=50)
    assert law.gamma.value == pytest.approx(-0.3) and law.gamma.has_interval
    assert [s.budget for s in law.not_inside] == [1e14]
    single = Points.of(_sweep_frame({c: () for c in budgets}))     # only the rule lr at every optimum
    law = fit_lr_law(single, n_boot=10)
    assert law.problem and all("only lr" in s.why_not_inside() for s in law.sweeps)


def test_a_median_centre_takes_each_points_median_over_its_drawn_seeds():
    """centre "median" (a design option): one stalled seed of three leaves the point at its good seeds' median;
    in a resample, each copy's value is the median of the seeds drawn for it (computed here by hand)."""
    rows = [{"family": "f", "budget": 1e12, "params": 1e4, "samples": 1e6, "lr": 1e-3, "shape": {"width": 0},
             "seed": s, "loss": loss, "test_loss": loss, "compute": 1e12}
            for s, loss in enumerate((0.030, 0.031, 0.060))]
    frame = pd.DataFrame(rows)
    assert Points.of(frame).frame["loss"].iloc[0] == pytest.approx(0.121 / 3)
    points = Points.of(frame, centre="median")
    assert points.frame["loss"].iloc[0] == 0.031 and points.frame["params"].iloc[0] == 1e4
    for i in range(20):
        d = points.draw(np.random.default_rng(i))
        assert points.mean(d, "loss")[0] == np.median(points.value("loss")[d.members])
    assert points.subset([True]).centre == "median"
    with pytest.raises(ValueError, match="centre"):
        Points.of(frame, centre="mode")


def test_a_trained_centre_averages_the_seeds_within_15_percent_of_the_points_lowest():
    """centre "trained" (a design option): seeds more than 15% above the point's lowest are stalls, left out of its
    mean; in a resample each copy's value comes from its drawn seeds alone (computed here by hand)."""
    losses = (0.030, 0.034, 0.0346, 0.060)      # 0.034 is 13% above 0.030 (kept), 0.0346 is 15.3% (a stall)
    rows = [{"family": "f", "budget": 1e12, "params": 1e4, "samples": 1e6, "lr": 1e-3, "shape": {"width": 0},
             "seed": s, "loss": loss, "test_loss": loss, "compute": 1e12} for s, loss in enumerate(losses)]
    points = Points.of(pd.DataFrame(rows), centre="trained")
    assert points.frame["loss"].iloc[0] == pytest.approx(0.032)
    assert points.frame["seeds"].iloc[0] == 4          # the stalls are counted as seeds, only left out of the mean
    for i in range(30):
        d = points.draw(np.random.default_rng(i))
        drawn = points.value("loss")[d.members]
        expected = np.mean([v for v in drawn if v <= 1.15 * drawn.min()])
        assert points.mean(d, "loss")[0] == pytest.approx(expected)
    assert points.subset([True]).centre == "trained"
