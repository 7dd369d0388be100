"""Claim 1 by training length on synthetic data studies v2 (`data/<family>/<size>/<steps>`, a log lr grid, seeds at
the best lr) with known losses: best points and the lr-inside check against an independent computation from the
stored trials, the pooled seed noise against the stored seeds, ratio and slope intervals that cover the truth (and miss
a wrong one; with 2 seeds at the best lr: the pooled intervals, not a point's own seeds), each claim-1 half's verdict
from storages that flip it, and `equiscale report` end to end."""

from __future__ import annotations

import numpy as np
import pytest

from analysis.claims import claim1
from analysis.data_efficiency import analyse, load_data_storage, study_length
from analysis.lengths import LENGTH, SIZE, analyse_lengths, seed_pool, slope_of
from analysis.ratios import best_ratios
from analysis.report import data_pairs
from analysis.verdicts import NOT_SHOWN, NOT_SUPPORTED, NOT_TESTED, SUPPORTED
from study import schema
from study.cli import main
from tests.analysis.test_report import _table_after
from tests.analysis.synthetic_data import GRID, GRID_PENALTY, LengthTruth, make_length_storage

SMALL = {256: (1000, 3000, 10000), 1024: (1000, 3000, 10000)}
LENGTHS = {**SMALL, 4096: (10000,)}
GATR = LengthTruth(1.0, 0.3)
PLAIN = LengthTruth(2.0, 0.3, gap=0.5)
CLOSING = LengthTruth(1.0, 0.3, gap=1.0, decay=1.5)     # ÷ GATr: 2, 1.19, 1.03 at 1e3, 3e3, 1e4 steps
GROWING = LengthTruth(1.2, 0.3, gap=0.2, decay=-0.5)    # ÷ GATr: 1.44, 1.62, 1.96: the gap widens with length
CLAIMS = schema.ClaimFamilies()
EDGE_PENALTY = (1.0, 1.1, 1.2, 1.3, 1.4)                # the lowest lr of the grid is best


def _analyse(url, claims=CLAIMS, n_boot=200):
    ratio_pairs, gap_pairs = data_pairs(claims)
    return analyse(load_data_storage(url), ratio_pairs=ratio_pairs, gap_pairs=gap_pairs, n_boot=n_boot, seed=0)


def _halves(d, claims=CLAIMS):
    v = claim1(d, claims)
    return v.parts["equivariance improves data efficiency"][0], v.parts["augmentation closes the gap"][0], v


@pytest.fixture(scope="module")
def closing(tmp_path_factory):
    url = f"sqlite:///{tmp_path_factory.mktemp('v2') / 'closing.db'}"
    stored = make_length_storage(url, {"gatr": GATR, "transformer": PLAIN, "transformer-aug": CLOSING}, LENGTHS,
                                 noise=0.02, seeds=2, seed=1)
    # an extra family whose best lr is the grid's lowest: reported at an edge
    stored.update(make_length_storage(url, {"edge": GATR}, {256: (1000,)}, seeds=2, seed=2, penalties=EDGE_PENALTY))
    return url, stored


def test_best_points_and_lr_inside_match_the_stored_trials(closing):
    url, stored = closing
    points = {(p.family, p.train_size, p.steps): p for p in _analyse(url, n_boot=0).lengths.points}
    cells = {(f, n, s) for f, n, s, _ in stored}
    assert set(points) == cells
    for f, n, s in cells:   # independently: mean over seeds per lr, the lowest, strictly inside the lrs tried?
        means = {lr: float(np.mean(v)) for (g, m, t, lr), v in stored.items() if (g, m, t) == (f, n, s)}
        lr = min(means, key=means.get)
        p = points[(f, n, s)]
        assert p.lr == lr and p.val == pytest.approx(means[lr]) and p.test == pytest.approx(means[lr] * 1.01)
        assert p.seeds == len(stored[(f, n, s, lr)]) and p.tried == tuple(sorted(means))
        assert p.inside == (min(means) < lr < max(means))
        assert p.val_sd == pytest.approx(np.std(stored[(f, n, s, lr)], ddof=1))
    assert not points[("edge", 256, 1000)].inside and "lowest" in points[("edge", 256, 1000)].grid_text()
    assert points[("gatr", 256, 1000)].inside and points[("gatr", 256, 1000)].lr == GRID[2]


def test_best_per_size_is_the_best_mean_at_the_longest_length(closing):
    url, stored = closing
    d = _analyse(url, n_boot=0)
    best = {(r["family"], int(r[schema.TRAIN_SIZE])): r for _, r in d.best.iterrows()}
    for f, n in {(f, n) for f, n, _, _ in stored}:   # independently: the longest length, mean over seeds, lowest
        longest = max(s for g, m, s, _ in stored if (g, m) == (f, n))
        means = {lr: float(np.mean(v)) for (g, m, s, lr), v in stored.items() if (g, m, s) == (f, n, longest)}
        lr = min(means, key=means.get)
        assert best[(f, n)]["lr"] == lr and best[(f, n)]["loss"] == pytest.approx(means[lr])
        assert best[(f, n)]["seeds"] == len(stored[(f, n, longest, lr)])
    law = d.laws["gatr"]   # through the sizes' best means at 10,000 steps: GATr's truth has no length term
    assert law.sizes == (256, 1024, 4096) and law.estimates["alpha"].value == pytest.approx(GATR.alpha, abs=0.03)


def test_a_study_counts_at_its_own_length():
    attrs = schema.StudyAttrs("gatr", 1e12, 64, "k", 3, kind=schema.DATA, train_size=256)
    assert study_length(schema.data_study_name("gatr", 256, 1000), attrs, [700.0, 1000.0]) == 1000  # a capped run
    assert study_length(schema.data_study_name("gatr", 256, 1000), attrs, [700.0]) == 1000
    assert study_length(schema.data_study_name("gatr", 256), attrs, [6000.0, 6000.0]) == 6000         # v1 name
    assert study_length(schema.data_study_name("gatr", 512, 1000), attrs, [700.0]) == 700             # not its name
    assert np.isnan(study_length(schema.data_study_name("gatr", 256), attrs, [float("nan")]))


def _truth(a, b, n, steps):
    return float(a.loss(n, steps) / b.loss(n, steps))


def test_ratio_and_slope_intervals_cover_the_truth(tmp_path):
    """With 6 seeds at the best lr the 95% intervals of every (size, length) ratio and of each size's slope should
    mostly cover the known values, and mostly miss values 8% off (an interval that ignored the seed noise, or a
    ratio of the wrong points, fails one or the other)."""
    url = f"sqlite:///{tmp_path / 'cover.db'}"
    truths = {"gatr": GATR, "transformer": PLAIN, "transformer-aug": CLOSING}
    make_length_storage(url, truths, {256: (1000, 3000, 10000), 1024: (1000, 3000, 10000), 4096: (1000, 10000)},
                        noise=0.03, seeds=6, seed=5)
    d = _analyse(url, n_boot=300)
    covered, off, cells = 0, 0, 0
    slopes = []
    for (a, b), per in d.lengths.trends.items():
        for n, t in per.items():
            for r in t.ratios:
                truth = _truth(truths[a], truths[b], n, r.at)
                assert r.estimate.value == pytest.approx(truth, rel=0.06)
                covered += r.estimate.low <= truth <= r.estimate.high
                off += r.estimate.low <= truth * 1.08 <= r.estimate.high
                cells += 1
            truth_slope = slope_of(t.lengths, [_truth(truths[a], truths[b], n, s) for s in t.lengths])
            slopes.append(t.slope.low <= truth_slope <= t.slope.high)
    assert cells == 2 * 8
    print(f"covered {covered}/{cells}, 8% off {off}/{cells}, slopes {sum(slopes)}/{len(slopes)}")
    assert covered / cells >= 0.75, (covered, cells)
    assert off / cells <= 0.25, (off, cells)
    assert np.mean(slopes) >= 0.65, slopes


def _pool_independently(stored, family):
    """Per replicated point of `family` in `stored`: log losses minus their mean, × sqrt(k/(k-1)); sorted."""
    out = []
    for (f, _, _, _), v in stored.items():
        if f == family and len(v) > 1:
            logs = np.log(v)
            out += list((logs - logs.mean()) * np.sqrt(len(v) / (len(v) - 1)))
    return np.sort(out)


def test_seed_pool_matches_the_stored_seeds(closing, tmp_path):
    url, stored = closing
    frame = load_data_storage(url).frame
    for family in ("gatr", "transformer", "transformer-aug"):
        pool = seed_pool(frame[frame["family"] == family])
        expected = _pool_independently(stored, family)
        assert pool.points == 7 and np.sort(pool.val) == pytest.approx(expected, abs=1e-12)
        assert np.sort(pool.test) == pytest.approx(expected, abs=1e-9)   # test = val × 1.01: the same deviations
        assert pool.sd == pytest.approx(np.sqrt(np.mean(expected ** 2)))
    edge = frame[frame["family"] == "edge"]          # one replicated point: too few to pool
    assert seed_pool(edge) is None and seed_pool(frame[frame[schema.SEED].fillna(0) == 0]) is None


def _renoised(frame, truths, noise, rng):
    """The frame's trials with fresh losses drawn as `make_length_storage` draws them (truth × the lr's penalty ×
    exp(noise · N(0, 1)), test = val × 1.01): an independent replication of the same design."""
    penalty = dict(zip(GRID, GRID_PENALTY))
    truth = np.array([truths[f].loss(n, s) * penalty[lr]
                      for f, n, s, lr in zip(frame["family"], frame[SIZE], frame[LENGTH], frame["lr"])])
    loss = truth * np.exp(noise * rng.normal(size=len(frame)))
    return frame.assign(loss=loss, **{schema.VAL_LOSS: loss, schema.TEST_LOSS: loss * 1.01})


def test_two_seed_intervals_cover_the_truth_with_the_pooled_seed_noise(closing):
    """2 seeds at the best lr, 1 at the others, known seed noise: over 12 replications of the closing storage's
    design the pooled intervals cover the true ratio in >= 85% of the cells, while each point's own seeds drawn
    with replacement (the method before pooling, `best_ratios(draw_points=False)`) cover it in fewer."""
    truths = {"gatr": GATR, "transformer": PLAIN, "transformer-aug": CLOSING}
    base = load_data_storage(closing[0]).frame
    base = base[base["family"].isin(truths)]
    pairs = data_pairs(CLAIMS)[0]
    rng = np.random.default_rng(11)
    pooled, old, cells = 0, 0, 0
    for rep in range(12):
        frame = _renoised(base, truths, 0.03, rng)
        lengths = analyse_lengths(frame, pairs, n_boot=200, seed=rep)
        assert set(lengths.pools) == set(truths)
        for a, b in pairs:
            for n, t in lengths.trends[(a, b)].items():
                part = frame[frame[SIZE] == n]
                before = {r.at: r for r in best_ratios(part, by=LENGTH, numerator=a, denominator=b, n_boot=200,
                                                       seed=rep, draw_points=False)}
                for r in t.ratios:
                    truth = _truth(truths[a], truths[b], n, r.at)
                    pooled += r.estimate.low <= truth <= r.estimate.high
                    old += before[r.at].estimate.low <= truth <= before[r.at].estimate.high
                    cells += 1
    print(f"95% intervals cover the true ratio: pooled {pooled}/{cells}, own seeds {old}/{cells}")
    assert cells == 12 * 2 * 7
    assert pooled / cells >= 0.85, (pooled, old, cells)
    assert old / cells < 0.85 and old < pooled, (pooled, old, cells)


def test_closing_storage_supports_both_halves(closing):
    efficiency, closes, v = _halves(_analyse(closing[0]))
    assert (efficiency, closes, v.status) == (SUPPORTED, SUPPORTED, SUPPORTED), v.text
    assert "judged at the small sizes n = 256, 1024" in v.text   # the sizes trained at several lengths
    assert "best lr strictly inside the lrs trained at 18 of 18 of these points" in v.text


def test_gap_that_widens_with_length_is_not_supported(tmp_path):
    url = f"sqlite:///{tmp_path / 'grow.db'}"
    make_length_storage(url, {"gatr": GATR, "transformer": PLAIN, "transformer-aug": GROWING}, SMALL, seed=3)
    efficiency, closes, v = _halves(_analyse(url))
    assert (efficiency, closes, v.status) == (SUPPORTED, NOT_SUPPORTED, NOT_SUPPORTED), v.text


def test_gap_that_shrinks_but_stays_open_is_not_shown(tmp_path):
    url = f"sqlite:///{tmp_path / 'open.db'}"
    slow = LengthTruth(1.0, 0.3, gap=1.0, decay=0.5)      # ÷ GATr 2, 1.58, 1.32: shrinks, open at 1e4 steps
    make_length_storage(url, {"gatr": GATR, "transformer": PLAIN, "transformer-aug": slow}, SMALL, seed=3)
    assert _halves(_analyse(url))[1] == NOT_SHOWN


def test_baseline_better_flips_data_efficiency(tmp_path):
    url = f"sqlite:///{tmp_path / 'flip.db'}"
    # the plain transformer and GATr swapped: the baseline is better at every small size
    make_length_storage(url, {"gatr": PLAIN, "transformer": GATR, "transformer-aug": CLOSING}, SMALL, seed=4)
    efficiency, _, v = _halves(_analyse(url))
    assert efficiency == NOT_SUPPORTED and v.status == NOT_SUPPORTED, v.text


@pytest.mark.parametrize("lengths, seeds, why", [
    ({256: (1000, 10000), 1024: (1000, 10000)}, 2, "2 training length(s) (needs 3)"),
    ({256: (1000, 2000, 5000), 1024: (1000, 2000, 5000)}, 2, "lengths span 5× (needs 10×)"),
    (SMALL, 1, "a best point has 1 seed(s) (needs 2)"),
])
def test_design_that_cannot_separate_the_trend_is_not_tested(tmp_path, lengths, seeds, why):
    url = f"sqlite:///{tmp_path / 'short.db'}"
    make_length_storage(url, {"gatr": GATR, "transformer": PLAIN, "transformer-aug": CLOSING}, lengths, seeds=seeds,
                        seed=6)
    d = _analyse(url, n_boot=100)
    efficiency, closes, v = _halves(d)
    assert closes == NOT_TESTED and why in v.text, v.text
    assert efficiency == SUPPORTED and v.status == NOT_SHOWN
    assert bool(d.lengths.pools) == (seeds > 1)   # one seed everywhere: no pool, the lr points are drawn instead


def test_one_size_leaves_data_efficiency_not_tested(tmp_path):
    url = f"sqlite:///{tmp_path / 'one.db'}"
    make_length_storage(url, {"gatr": GATR, "transformer": PLAIN, "transformer-aug": CLOSING}, {256: SMALL[256]}, seed=7)
    efficiency, closes, v = _halves(_analyse(url, n_boot=100))
    assert efficiency == NOT_TESTED and closes == SUPPORTED and v.status == NOT_SHOWN, v.text




def test_report_end_to_end_with_the_no_translation_variant(tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 'v2.db'}"
    claims = schema.ClaimFamilies(no_translation="transformer-aug-nt")
    truths = {"gatr": GATR, "transformer": PLAIN, "transformer-aug": CLOSING,
              "transformer-aug-nt": LengthTruth(1.3, 0.3, gap=1.0, decay=1.5)}
    stored = make_length_storage(url, truths, LENGTHS, seed=8, claims=claims,
                                 sizes_of={"transformer-aug-nt": (1024,)})
    out = tmp_path / "report"
    assert main(["report", "--storage", url, "--out", str(out), "--bootstrap", "100"]) == 0, capsys.readouterr().err
    assert "claim 1: supported" in capsys.readouterr().out
    md = (out / "report.md").read_text()
    (claim,) = [line for line in md.splitlines() if line.startswith("- **Claim 1**")]
    assert ("gatr more data-efficient than transformer: supported; transformer-aug closes the gap given enough "
            "training: supported") in claim
    assert "slope of log ratio vs log steps" in claim and "closes: claim 1, augmentation closes the gap" in md
    assert (out / "figures" / "length_ratios.png").is_file()
    rows = _table_after(md, "n = 1,024 scenes (small)")
    assert [r[0] for r in rows] == ["1,000", "3,000", "10,000"]
    for r in rows:   # the stored numbers: gatr's best (middle lr) mean over its seeds, inside the grid; the ratio
        steps = int(r[0].replace(",", ""))
        best = {f: float(np.mean(stored[(f, 1024, steps, GRID[2])])) for f in ("gatr", "transformer-aug")}
        assert r[1].startswith(f"{best['gatr']:.4g} ± ") and r[1].endswith("2 seed(s), inside)")
        assert r[6].startswith(f"{best['transformer-aug'] / best['gatr']:.4g} [")
    assert "the best lr of 24 of 24 reported (family, size, length) points lies strictly inside" in md
    pooled = "; ".join(f"{f} {np.sqrt(np.mean(_pool_independently(stored, f) ** 2)):.3g} from {k} points"
                       for f, k in (("gatr", 7), ("transformer", 7), ("transformer-aug", 7), ("transformer-aug-nt", 3)))
    assert f"Pooled here (seed standard deviation of log validation loss): {pooled}." in md
    assert "assumes the seed noise of log loss is similar across a family's sizes, lengths and lrs" in md
    rows = _table_after(md, "No-translation variant (transformer-aug-nt")
    assert [r[:2] for r in rows] == [["1,024", "1,000"], ["1,024", "3,000"], ["1,024", "10,000"]]
    for r in rows:
        steps = int(r[1].replace(",", ""))
        nt, aug = (float(np.mean(stored[(f, 1024, steps, GRID[2])])) for f in ("transformer-aug-nt", "transformer-aug"))
        assert r[3].startswith(f"{nt / aug:.4g} [")
