"""Data studies: loading, the data law L = coef·n^(−α) with its interval, the gap vs epochs, best-loss ratios,
the held-out L(C) check, and compute loading that ignores data studies."""

import numpy as np
import pandas as pd
import pytest

from analysis.data_efficiency import (NoDataStudies, analyse, epoch_gap, fit_data_law, gap_curves, load_data_storage,
                                      small_sizes)
from analysis.heldout import held_out
from analysis.ratios import best_ratios
from analysis.trials import OnlyDataStudies, load_storage
from study.cli import main
from tests.analysis.synthetic import Truth, make_storage
from tests.analysis.synthetic_data import LR_PENALTY, DataTruth, make_data_storage, recorded_epochs

SIZES = [128, 256, 512, 1024, 2048, 4096]
TRUTHS = {"gatr": DataTruth(coef=0.5, alpha=0.40, slow=0.5), "transformer-aug": DataTruth(coef=0.52, alpha=0.40, slow=3.0)}


@pytest.fixture(scope="module")
def data_url(tmp_path_factory):
    url = f"sqlite:///{tmp_path_factory.mktemp('data') / 'data.db'}"
    stored = make_data_storage(url, TRUTHS, SIZES, noise=0.03, seed=1)
    return url, stored


def test_loading_keeps_complete_trials_with_their_curves(data_url):
    url, stored = data_url
    runs = load_data_storage(url)
    assert len(runs.frame) == sum(len(v) for v in stored.values())
    assert runs.excluded == {"trial state FAIL": len(stored)}
    best = runs.best()
    for (family, n), losses in stored.items():
        row = best[(best["family"] == family) & (best["train_size"] == n)].iloc[0]
        assert row["loss"] == min(losses)
        assert sorted(row["curve"]) == recorded_epochs(n)


@pytest.mark.parametrize("noise, seed", [(0.03, 1), (0.03, 2), (0.05, 3)])
def test_known_power_law_is_recovered_within_its_interval(tmp_path, noise, seed):
    url = f"sqlite:///{tmp_path / 'law.db'}"
    truth = DataTruth(coef=2.0, alpha=0.45)
    make_data_storage(url, {"gatr": truth}, [100, 200, 400, 800, 1600, 3200, 6400], noise=noise, seed=seed)
    law = fit_data_law(load_data_storage(url).frame, family="gatr", n_boot=300, seed=0)
    alpha = law.estimates["alpha"]
    assert not alpha.problem and alpha.has_interval
    assert alpha.low <= truth.alpha <= alpha.high
    assert alpha.high - alpha.low < 0.15  # informative, not merely wide
    assert alpha.value == pytest.approx(truth.alpha, abs=0.05)


def test_noiseless_law_is_exact_and_the_best_trial_per_size_is_used():
    n = np.array([100, 300, 1000, 3000, 10000])
    frame = pd.DataFrame({"train_size": np.repeat(n, 2), "loss": np.repeat(3.0 * n ** -0.3, 2) * np.tile([1.0, 1.2], 5)})
    law = fit_data_law(frame, family="x", n_boot=0)
    assert law.law.exponent == pytest.approx(0.3, abs=1e-12) and law.law.coef == pytest.approx(3.0, rel=1e-12)
    one = fit_data_law(frame.iloc[::2], family="x", n_boot=100)  # one trial per size, on the line: no spread
    alpha = one.estimates["alpha"]
    assert alpha.low == pytest.approx(0.3, abs=1e-9) and alpha.high == pytest.approx(0.3, abs=1e-9)


def test_too_few_sizes_is_not_identified():
    frame = pd.DataFrame({"train_size": [100, 200], "loss": [1.0, 0.8]})
    law = fit_data_law(frame, family="x", n_boot=10)
    assert law.law is None and "at least 3 training-set sizes, got 2" in law.problem


def test_gap_at_common_epochs_by_hand():
    epochs, ratio, interpolated = epoch_gap({1: 2.0, 2: 1.5, 4: 1.2, 8: 1.0}, {1: 1.0, 2: 1.0, 4: 0.8, 16: 0.9})
    assert not interpolated
    np.testing.assert_allclose(epochs, [1, 2, 4])
    np.testing.assert_allclose(ratio, [2.0, 1.5, 1.5])


def test_gap_interpolates_in_log_epoch_when_no_epoch_is_shared():
    epochs, ratio, interpolated = epoch_gap({2: 1.2, 8: 1.0, 32: 0.9}, {1: 1.0, 4: 0.8, 16: 0.5})
    assert interpolated
    np.testing.assert_allclose(epochs, [2, 8])  # 32 lies beyond the denominator's last epoch
    # epoch 2 is halfway between 1 and 4 in log epoch: loss sqrt(1.0 · 0.8); epoch 8 between 4 and 16: sqrt(0.8 · 0.5)
    np.testing.assert_allclose(ratio, [1.2 / np.sqrt(0.8), 1.0 / np.sqrt(0.4)])
    assert epoch_gap({1: 1.0}, {5: 1.0})[0].size == 0


def test_gap_curves_from_storage_match_the_learning_curves(data_url):
    url, stored = data_url
    curves = gap_curves(load_data_storage(url).best(), "transformer-aug", "gatr")
    assert [g.train_size for g in curves] == SIZES
    a, g = TRUTHS["transformer-aug"], TRUTHS["gatr"]
    for curve in curves:
        n = curve.train_size
        e = np.array(recorded_epochs(n), float)
        penalty = {f: LR_PENALTY[int(np.argmin(stored[(f, n)]))] for f in TRUTHS}  # the best trial's learning rate
        expected = (a.curve(n, e) * penalty["transformer-aug"]) / (g.curve(n, e) * penalty["gatr"])
        np.testing.assert_allclose(curve.epochs, e)
        np.testing.assert_allclose(curve.ratio, expected, rtol=1e-12)
        assert not curve.interpolated
        if n <= 512:  # many epochs: transformer-aug catches up
            assert curve.ratio[0] > 2 and curve.ratio[-1] < 1.2


def test_small_sizes_are_the_smaller_half():
    assert small_sizes([512, 128, 256, 1024, 2048]) == [128, 256]
    assert small_sizes([64, 128, 256, 512]) == [64, 128]
    assert small_sizes([300]) == [300]


def test_best_ratio_is_the_ratio_of_the_lowest_losses():
    frame = pd.DataFrame({"family": ["a"] * 3 + ["b"] * 3 + ["a"], "at": [1, 1, 1, 1, 1, 1, 2],
                          "loss": [0.5, 0.4, 0.6, 0.8, 1.0, 0.9, 0.3]})
    (r,) = best_ratios(frame, by="at", numerator="a", denominator="b", n_boot=0)  # group 2 has no b
    assert r.at == 1 and r.estimate.value == pytest.approx(0.4 / 0.8) and not r.estimate.has_interval
    (r,) = best_ratios(frame, by="at", numerator="a", denominator="b", n_boot=200)
    draws_max = 0.6 / 0.8  # the largest ratio any resample can give: worst a over best b
    assert r.estimate.low >= 0.4 / 1.0 - 1e-12 and r.estimate.high <= draws_max + 1e-12
    assert r.verdict() == "lower"


def test_analyse_ratios_and_small_sizes(data_url):
    url, stored = data_url
    d = analyse(load_data_storage(url), ratio_pairs=[("transformer-aug", "gatr"), ("gatr", "transformer")],
                gap_pairs=[("transformer-aug", "gatr")], n_boot=50)
    assert list(d.lengths.trends) == [("transformer-aug", "gatr")]  # no transformer studies: that pair is left out
    assert d.small == [128, 256, 512]   # one length per size (v1): the smaller half
    for n, t in d.lengths.trends[("transformer-aug", "gatr")].items():
        (r,) = t.ratios   # one length per size
        assert r.estimate.value == pytest.approx(min(stored[("transformer-aug", n)]) / min(stored[("gatr", n)]))


def test_held_out_prediction_of_a_power_law():
    c = np.repeat([1e11, 1e12, 1e13, 1e14], 3)
    loss = 5.0 * c ** -0.1 * np.tile([1.0, 1.1, 1.3], 4)
    h = held_out("x", c, loss, n_boot=100)
    assert h.budget == 1e14 and h.fitted_budgets == (1e11, 1e12, 1e13)
    assert h.measured == pytest.approx(5.0 * 1e14 ** -0.1)
    assert h.error == pytest.approx(0.0, abs=1e-9) and h.inside
    off = loss.copy()
    off[c == 1e14] *= 1.5  # the largest budget does worse than the law
    h = held_out("x", c, off, n_boot=100)
    assert h.error == pytest.approx(1 / 1.5 - 1, rel=1e-6) and h.inside is False
    short = held_out("x", c[c < 1e14], loss[c < 1e14], n_boot=10)
    assert "at least 4 budgets" in short.problem and short.inside is None


def test_compute_loading_skips_data_studies(tmp_path):
    url = f"sqlite:///{tmp_path / 'both.db'}"
    make_storage(url, {"gatr": Truth()}, [1e12, 1e13, 1e14], per_budget=4, extras=False)
    make_data_storage(url, {"gatr": DataTruth(1.0, 0.3)}, [100, 200, 400])
    runs = load_storage(url)
    assert len(runs.frame) == 12 and set(runs.frame["budget"]) == {1e12, 1e13, 1e14}
    assert len(load_data_storage(url).frame) == 9


def test_only_data_studies_is_an_error_pointing_to_report(tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 'data.db'}"
    make_data_storage(url, {"gatr": DataTruth(1.0, 0.3)}, [100, 200, 400])
    with pytest.raises(OnlyDataStudies, match="equiscale report"):
        load_storage(url)
    for argv in (["fit"], ["export", "--budgets", "1e12"], ["plot", "--out", str(tmp_path / "figs")]):
        assert main([*argv, "--storage", url]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and "only data studies" in err and "equiscale report" in err, err
    assert not (tmp_path / "figs").exists()


def test_compute_only_storage_has_no_data_studies(tmp_path):
    url = f"sqlite:///{tmp_path / 'c.db'}"
    make_storage(url, {"gatr": Truth()}, [1e12, 1e13, 1e14], per_budget=3)
    with pytest.raises(NoDataStudies):
        load_data_storage(url)


def test_a_single_run_gives_no_interval():
    frame = pd.DataFrame({"family": ["a", "b", "b"], "at": [1, 1, 1], "loss": [0.5, 1.0, 2.0]})
    (r,) = best_ratios(frame, by="at", numerator="a", denominator="b", n_boot=100)
    assert r.estimate.value == 0.5 and not r.estimate.has_interval and not r.estimate.problem
    assert r.runs == (1, 2) and "single run" in r.why_no_interval() and r.verdict() == "undecided"
