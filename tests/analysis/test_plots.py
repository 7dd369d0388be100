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
