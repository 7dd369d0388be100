"""Approach 3 on the Chinchilla runs (Hoffmann et al. 2022, Fig. 4) against the published replication.

Besiroglu et al. 2024, "Chinchilla Scaling: A replication attempt" (arXiv 2404.10102), fit the same
runs without the five highest-loss ones: estimates with standard errors
E 1.8172 (0.03), A 482.01 (124.58), B 2085.43 (1293.23), α 0.3478 (0.02), β 0.3658 (0.02).
"""

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis.bootstrap import bootstrap_parametric, estimate
from analysis.parametric import fit_parametric

CSV = Path(__file__).parents[2] / ".." / "shared" / "validation" / "chinchilla_figure4.csv"
PUBLISHED = {"E": (1.8172, 0.03), "A": (482.01, 124.58), "B": (2085.43, 1293.23),
             "alpha": (0.3478, 0.02), "beta": (0.3658, 0.02)}


def require_data(path: Path) -> None:
    """Missing validation data fails the run under CI (the environment variable CI is set) and skips
    it elsewhere (a checkout without shared/ beside it)."""
    if path.is_file():
        return
    message = f"validation data absent: {path.resolve()} (shared/ must sit beside the repository)"
    if os.environ.get("CI"):
        pytest.fail(message + "; under CI this is a failure, not a skip")
    pytest.skip(message)


def test_missing_data_fails_under_ci_and_skips_elsewhere(tmp_path, monkeypatch):
    absent = tmp_path / "chinchilla_figure4.csv"
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="under CI this is a failure"):
        require_data(absent)
    monkeypatch.delenv("CI")
    with pytest.raises(pytest.skip.Exception):
        require_data(absent)


@pytest.fixture(scope="module")
def runs():
    require_data(CSV)
    table = pd.read_csv(CSV)
    assert len(table) == 245
    kept = table.sort_values("loss").iloc[:-5]  # the five highest-loss runs left out, as published
    n = kept["params"].to_numpy(float)
    return n, kept["training_flops"].to_numpy(float) / (6 * n), kept["loss"].to_numpy(float)


@pytest.fixture(scope="module")
def fit(runs):
    return fit_parametric(*runs)


def test_fit_agrees_with_published_replication_within_its_intervals(fit):
    for key, (value, se) in PUBLISHED.items():
        assert abs(getattr(fit, key) - value) <= 1.96 * se, (key, getattr(fit, key), value, se)


@pytest.mark.slow
def test_bootstrap_intervals_contain_published_values_and_match_their_errors(runs, fit):
    samples = bootstrap_parametric(*runs, fit, n_boot=200, seed=0)
    for key, (value, se) in PUBLISHED.items():
        e = estimate(getattr(fit, key), samples[key])
        assert e.low <= value <= e.high, (key, e, value)
        assert 0.5 * se <= np.std(samples[key]) <= 2 * se, (key, np.std(samples[key]), se)
