"""benchmarks/isoflop_design.py: its simulated studies sit where the law's optimum is (checked against the
closed form), and its verdict separates a design the report's bootstrap can bound from one it cannot."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis.allocation import FlopsModel
from analysis.isoflop import fit_isoflop
from analysis.parametric import ParametricFit
from analysis.points import Points
from study.config import load_config, resolve
from study.flops import step_flops
from tests.scripts import load_benchmark

design = load_benchmark("isoflop_design")
ALPHA, BETA, A, B = 0.34, 0.28, 400.0, 400.0
LAW = ParametricFit(E=0.02, A=A, B=B, alpha=ALPHA, beta=BETA, objective=0.0, n_runs=0, starts=0, refined=0)
MODEL = FlopsModel()
BUDGETS = [1e11, 3e11, 1e12, 3e12, 1e13]
SILENT = {"all": np.zeros(1)}     # no seed noise


@pytest.mark.parametrize("budget", [1e11, 1e13])
def test_the_optimum_is_the_closed_form_one(budget):
    # L = E + A N^-α + B D^-β with D = C / (6N): N_opt = (αA / (βB))^(1/(α+β)) (C/6)^(β/(α+β))
    n_opt = (ALPHA * A / (BETA * B)) ** (1 / (ALPHA + BETA)) * (budget / 6) ** (BETA / (ALPHA + BETA))
    assert design.optimum(LAW, MODEL, budget) == pytest.approx(np.log10(n_opt), abs=2e-3)


def test_a_simulated_study_puts_its_points_around_the_optimum_with_its_seeds():
    frame = design.simulate(LAW, MODEL, BUDGETS, SILENT, (3, 0.25, 2), np.random.default_rng(0))
    assert len(frame) == 5 * 7 * 2
    for budget, group in frame.groupby("budget"):
        logn = np.log10(group["params"].unique())
        centre = design.optimum(LAW, MODEL, budget)
        assert abs(np.median(logn) - centre) <= 0.125 + 1e-9 and np.ptp(logn) == pytest.approx(1.5)
        assert np.allclose(group["loss"], LAW.predict(group["params"], group["samples"]))   # no noise drawn


def test_a_wide_design_is_identified_near_the_true_exponent_and_a_three_point_one_is_not():
    rng = np.random.default_rng(1)
    wide = design.simulate(LAW, MODEL, BUDGETS, SILENT, (3, 0.25, 1), rng)
    ok, width = design.identified(wide, MODEL, 100, 0)
    assert ok and width <= 0.35
    fit = fit_isoflop(wide["budget"], wide["params"], wide["loss"], model=MODEL)
    assert fit.a == pytest.approx(BETA / (ALPHA + BETA), abs=0.03)                 # Chinchilla's a = β / (α + β)
    narrow = design.simulate(LAW, MODEL, BUDGETS, SILENT, (1, 0.25, 1), rng)
    ok, width = design.identified(narrow, MODEL, 100, 0)
    assert not ok and np.isnan(width)   # resamples that drop the single neighbour on a side leave < 3 budgets


def test_a_side_with_little_room_gets_its_sizes_packed_and_a_side_with_none_gets_none():
    assert design.design_sizes(5.0, 3, 0.25) == pytest.approx([4.25, 4.5, 4.75, 5.0, 5.25, 5.5, 5.75])
    assert design.design_sizes(5.0, 3, 0.25, 4.7, 6.0) == pytest.approx([4.7, 4.8, 4.9, 5.0, 5.25, 5.5, 5.75])
    assert design.design_sizes(4.5, 2, 0.25, 4.7, 6.0) == pytest.approx([4.7, 4.95, 5.2])   # best clamped to the limit


def test_median_centred_noise_keeps_a_stuck_seed_one_high_draw():
    # one point, three seeds, one stuck 50% above the other two: deviations from the mean are (−1/7, −1/7, +2/7)
    # (times sqrt(3/2)); from the median (0, 0, +1/2).
    rows = [{"family": "f", "budget": 1e11, "params": 1e4, "samples": 1e6, "loss": loss, "compute": 1e11,
             "seed": s, "shape": "a", "lr": 1e-3} for s, loss in enumerate((0.03, 0.03, 0.045))]
    points = Points.of(pd.DataFrame(rows)).profile()
    mean = np.sort(design.noise_pools(points)[1e11])
    assert mean == pytest.approx(np.array([-1, -1, 2]) / 7 * np.sqrt(1.5))
    median = np.sort(design.noise_pools(points, centre="median")[1e11])
    assert median == pytest.approx([0.0, 0.0, 0.5])
    kept = np.sort(design.noise_pools(points, centre="median", drop_above=0.2)[1e11])   # without the stuck seed
    assert kept == pytest.approx([0.0, 0.0])


def test_dropping_beyond_a_deviation_also_drops_the_good_seed_of_a_stalled_point():
    # two seeds stalled 50% above the third: the median is stalled and the good seed sits 1/3 below it, which
    # --drop-above keeps (one-sided) and --drop-beyond leaves out with the stall.
    rows = [{"family": "f", "budget": 1e11, "params": 1e4, "samples": 1e6, "loss": loss, "compute": 1e11,
             "seed": s, "shape": "a", "lr": 1e-3} for s, loss in enumerate((0.03, 0.045, 0.045))]
    points = Points.of(pd.DataFrame(rows)).profile()
    above = np.sort(design.noise_pools(points, centre="median", drop_above=0.2)[1e11])
    assert above == pytest.approx([-1 / 3, 0.0, 0.0])
    beyond = np.sort(design.noise_pools(points, centre="median", drop_beyond=0.2)[1e11])
    assert beyond == pytest.approx([0.0, 0.0])


def test_a_stall_rate_keeps_every_normal_draw_and_makes_stalls_that_fraction_of_the_pool():
    pools = {1e11: np.array([0.01, -0.01, 0.0, 0.02, 0.5, -0.3]), "all": np.array([0.0, 0.01, 0.4])}
    out = design.with_stall_rate(pools, 0.2)
    normal, stalls = out[1e11][np.abs(out[1e11]) <= 0.05], out[1e11][np.abs(out[1e11]) > 0.05]
    assert sorted(normal) == [-0.01, 0.0, 0.01, 0.02] and len(stalls) == 1 and stalls[0] in (0.5, -0.3)
    assert sorted(design.with_stall_rate(pools, 0.0)[1e11]) == [-0.01, 0.0, 0.01, 0.02]
    assert len(design.with_stall_rate(pools, 0.5)["all"]) == 4      # 2 normal + 2 stall draws of the one


@pytest.mark.parametrize("rate", ["1", "-0.1"])
def test_a_stall_rate_outside_0_to_1_is_refused_in_one_line_before_any_storage_is_read(rate):
    done = subprocess.run([sys.executable, "benchmarks/isoflop_design.py", "--storage", "sqlite:///no-such.db",
                           "--stall-rate", rate], cwd=Path(__file__).resolve().parents[2],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1].endswith(f"--stall-rate takes a fraction in [0, 1), got {float(rate)}")


@pytest.mark.parametrize("args, message", [
    (["--stalls", "1"], "--stalls takes a fraction in [0, 1), got 1.0"),
    (["--stalls", "0.1", "--stall-rate", "0.1"], "give --stall-rate or --stalls, not both"),
    (["--ladder"], "--ladder and --max-steps need --study-file"),
    (["--study-file", "studies/cpu.toml", "--max-steps", "0"], "--max-steps takes a positive number of steps, got 0"),
    (["--budgets", "1e11", "-1"], "--budgets takes positive FLOP budgets, got 1e+11 -1"),
])
def test_bad_design_options_are_refused_in_one_line_before_any_storage_is_read(args, message):
    done = subprocess.run([sys.executable, "benchmarks/isoflop_design.py", "--storage", "sqlite:///no-such.db", *args],
                          cwd=Path(__file__).resolve().parents[2], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1].endswith(message)


def test_stall_excesses_are_each_stalled_seeds_excess_over_its_points_lowest():
    # point a: 0.03, 0.0342 (14% up: trained), 0.06 (+100%); point b: 0.04, 0.05 (+25%); point c: one seed
    rows = [{"family": "f", "budget": 1e11, "params": 1e4, "samples": 1e6, "loss": loss, "compute": 1e11,
             "seed": s, "shape": shape, "lr": 1e-3}
            for shape, losses in (("a", (0.03, 0.0342, 0.06)), ("b", (0.05, 0.04)), ("c", (0.09,)))
            for s, loss in enumerate(losses)]
    assert np.sort(design.stall_excesses(Points.of(pd.DataFrame(rows)))) == pytest.approx([0.25, 1.0])


def test_with_stalls_draws_only_normal_draws_and_positive_excesses_at_the_rate():
    pools = {1e11: np.array([0.01, -0.01, 0.0, 0.02, 0.5, -0.3]), "all": np.array([0.0, 0.01, -0.4])}
    out = design.with_stalls(pools, np.array([0.8]), 0.2)
    assert sorted(out[1e11]) == [-0.01, 0.0, 0.01, 0.02, 0.8]         # -0.3 and 0.5 gone, 1 stall in 5
    assert sorted(out["all"]) == [0.0, 0.01]                          # 2 normal draws: round(0.5) = 0 stalls
    assert sorted(design.with_stalls(pools, np.array([0.8]), 0.5)[1e11]) == [-0.01, 0.0, 0.01, 0.02, 0.8, 0.8,
                                                                               0.8, 0.8]


def test_snapping_to_a_ladder_keeps_each_size_once_and_on_its_side_of_the_best():
    ladder = np.log10([500.0, 1650.0, 3400.0, 5800.0, 8900.0, 12500.0])
    best = np.log10(1650.0)
    # 4 per side of 0.2 decades, the left side packed into the 0.52 decades down to 500: every left target
    # snaps to 500 or to the best itself, so the left flank is the one size 500; the right ones are distinct
    sizes = design.design_sizes(best, 4, 0.2, ladder[0], ladder[-1])
    assert design.snap(sizes, ladder, best) == pytest.approx(np.log10([500.0, 1650.0, 3400.0, 5800.0, 8900.0]))
    # the best is the ladder size nearest the optimum, wherever the optimum falls between two sizes
    assert design.snap([np.log10(3000.0)], ladder, np.log10(3000.0)) == pytest.approx([np.log10(3400.0)])


def test_a_higher_step_limit_adds_smaller_sizes_to_a_large_budgets_ladder():
    study = "studies/cpu.toml"
    root = Path(__file__).resolve().parents[2]
    base = design.ladder_sizes(str(root / study), "gatr-1h")
    more = design.ladder_sizes(str(root / study), "gatr-1h", max_steps=32000)
    assert set(base[1e13]) < set(more[1e13])                     # the same sizes and smaller ones
    spec = next(s for s in resolve(load_config(str(root / study))).studies
                if s.family_name == "gatr-1h" and s.budget == 1e13)
    for mv in range(1, 6):                                        # independent: steps = budget / FLOPs per step
        shape = {"mv_channels": mv, "s_channels": 2 * mv, "depth": spec.grid_depth}
        steps = 1e13 / step_flops("gatr", batch_size=spec.batch_size, **shape)
        params = np.log10(spec.space.params(mv, spec.grid_depth, spec))
        assert (np.isclose(more[1e13], params).any()) == (spec.step_range[0] <= steps <= 32000), mv
