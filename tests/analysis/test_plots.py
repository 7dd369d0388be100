"""Figures carry unit-labelled axes and legends naming the families."""

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from analysis import plots
from analysis.laws import fit_family
from tests.analysis.synthetic import Truth, draw_runs

FAMILIES = {"gatr": Truth(E=0.2, A=60.0, B=200.0, alpha=0.34, beta=0.37),
            "transformer": Truth(E=0.3, A=60.0, B=200.0, alpha=0.30, beta=0.35)}


@pytest.fixture(scope="module")
def fitted():
    frames = []
    for i, (family, truth) in enumerate(FAMILIES.items()):
        c, n, d, loss = draw_runs(truth, np.geomspace(1e13, 1e17, 5), 7, noise=0.01, seed=i)
        frames.append(pd.DataFrame({"family": family, "budget": c, "params": n, "samples": d, "flops": 6 * n * d,
                                    "loss": loss}))
    frame = pd.concat(frames, ignore_index=True)
    laws = {f: fit_family(frame[frame["family"] == f], family=f, n_boot=8, refine=10, n_jobs=1) for f in FAMILIES}
    return frame, laws


def _texts(fig):
    return [t.get_text() for ax in fig.axes if ax.get_legend() for t in ax.get_legend().get_texts()]


def test_loss_vs_compute_labels_and_legend(fitted):
    fig = plots.loss_vs_compute(*fitted, loss_label="validation loss [MSE, m²]")
    ax = fig.axes[0]
    assert ax.get_xlabel() == "training compute C [FLOP]" and ax.get_ylabel() == "validation loss [MSE, m²]"
    assert all(any(t.startswith(f) for t in _texts(fig)) for f in FAMILIES)
    plt.close(fig)


def test_isoflop_and_allocation_figures(fitted):
    fig = plots.isoflop_curves(*fitted, loss_label="loss")
    assert [ax.get_title() for ax in fig.axes[:2]] == [f"IsoFLOP curves: {f}" for f in FAMILIES]
    plt.close(fig)
    fig = plots.allocation(*fitted)
    assert all(ax.get_xlabel() == "training compute C [FLOP]" for ax in fig.axes)
    assert all(any(t.startswith(f) for t in _texts(fig)) for f in FAMILIES)
    plt.close(fig)


def _drawn_labels(fig):
    """(axis, visible major-tick label texts, non-empty minor-tick label texts) of every log axis."""
    fig.canvas.draw()
    out = []
    for ax in fig.axes:
        for name, axis in (("x", ax.xaxis), ("y", ax.yaxis)):
            if axis.get_scale() != "log":
                continue
            lo, hi = sorted(ax.get_xlim() if name == "x" else ax.get_ylim())
            major = [t.get_text() for t, v in zip(axis.get_ticklabels(), axis.get_majorticklocs()) if lo <= v <= hi]
            minor = [t.get_text() for t in axis.get_ticklabels(minor=True) if t.get_text()]
            out.append((ax, name, major, minor))
    return out


def test_log_axes_carry_few_labels_and_none_on_minor_ticks():
    """A short log axis (0.026-0.05, or one decade of compute) labels its minor ticks by default, and the labels
    run into each other ('3×10⁴¹¹×10¹¹'): here only a few major ticks are labelled, none of them twice."""
    frame = pd.DataFrame({"family": "f", "budget": np.repeat([1e11, 3e11, 1e12], 3), "params": np.tile([1e3, 3e3, 1e4], 3),
                          "samples": 1e6, "flops": np.repeat([1e11, 3e11, 1e12], 3),
                          "loss": [0.05, 0.045, 0.048, 0.04, 0.035, 0.038, 0.03, 0.026, 0.029]})
    laws = {"f": fit_family(frame, family="f", n_boot=0, refine=10, strict=False)}
    for fig in (plots.loss_vs_compute(frame, laws, loss_label="loss"), plots.allocation(frame, laws)):
        for ax, name, major, minor in _drawn_labels(fig):
            assert minor == [], (name, minor)
            assert 2 <= len(major) <= 7 and len(set(major)) == len(major), (name, major)
            boxes = [t.get_window_extent() for t in (ax.xaxis if name == "x" else ax.yaxis).get_ticklabels()
                     if t.get_text() and t.get_visible()]
            assert not any(a.overlaps(b) for i, a in enumerate(boxes) for b in boxes[i + 1:]), (name, major)
        plt.close(fig)


def test_isoflop_notes_sit_under_the_panel_not_over_the_data(fitted):
    frame, laws = fitted
    fig = plots.isoflop_curves(frame, laws, loss_label="loss")
    fig.canvas.draw()
    assert not any(t.get_text() for ax in fig.axes for t in ax.texts)   # no note drawn inside a panel
    plt.close(fig)


def test_length_ratio_figure_has_a_panel_per_pair_plain_ticks_and_a_line_at_one():
    from analysis.bootstrap import Estimate
    from analysis.lengths import Trend
    from analysis.ratios import Ratio

    def trend(n, values):
        rs = tuple(Ratio(s, "a", "b", Estimate(v, v * 0.95, v * 1.05), v, 1.0) for s, v in zip((600, 2000, 6000), values))
        return Trend(n, rs, Estimate(-0.1, -0.2, -0.05), 2)

    trends = {("transformer", "gatr"): {256: trend(256, (2.0, 1.8, 1.6)), 1024: trend(1024, (1.9, 1.7, 1.5))},
              ("transformer-aug", "gatr"): {256: trend(256, (1.5, 1.2, 1.02))}}
    fig = plots.length_ratios(trends, level=0.95)
    drawn = _drawn_labels(fig)
    assert len(drawn) == 2 and all(name == "x" for _, name, _, _ in drawn)    # one log x axis per pair
    for ax, _, major, minor in drawn:
        assert minor == [] and 2 <= len(major) <= 7 and all("$" not in t for t in major), major   # plain step counts
        assert any(np.allclose(line.get_ydata(), 1.0) for line in ax.get_lines())                   # the line at 1
        boxes = [t.get_window_extent() for t in ax.xaxis.get_ticklabels() if t.get_text() and t.get_visible()]
        assert not any(a.overlaps(b) for i, a in enumerate(boxes) for b in boxes[i + 1:]), major
    assert [ax.get_ylabel() for ax, *_ in drawn] == ["transformer ÷ gatr best loss", "transformer-aug ÷ gatr best loss"]
    plt.close(fig)
