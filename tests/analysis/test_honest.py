"""Honest numbers: `fit`, `export` and `plot` never print nan, never a value outside its own interval,
never an unmarked size outside the trained runs; what is not identified says so and why."""

import json

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from analysis import plots
from analysis.api import fit_study, load_runs
from study.cli import main
from tests.analysis.synthetic import Truth, draw_runs

FAST = ["--bootstrap", "60", "--refine", "10"]


def _csv(path, rows):
    pd.DataFrame(rows, columns=["family", "N", "C", "L"]).to_csv(path, index=False)
    return ["--from-csv", str(path), "--n-column", "N", "--c-column", "C", "--loss-column", "L",
            "--family-column", "family"]


@pytest.fixture(scope="module")
def mixed(tmp_path_factory):
    """Family `law`: runs of a known law over 5 budgets. Family `flat`: a plateau with noise (like
    the default CPU study's 0.08), where most quantities are not identified."""
    rng = np.random.default_rng(0)
    rows = []
    budget, n, d, loss = draw_runs(Truth(E=0.2, A=60.0, B=200.0, alpha=0.34, beta=0.37),
                                   np.geomspace(1e13, 1e17, 5), 8, noise=0.01, spread=30.0)
    rows += [("law", nn, 6 * nn * dd, ll) for nn, dd, ll in zip(n, d, loss)]
    for c in (1e10, 2e10, 4e10, 8e10):
        for nn in np.geomspace(4e3, 4e4, 6) * np.exp(rng.normal(0, 0.1, 6)):
            rows.append(("flat", nn, c, 0.08 * np.exp(0.02 * rng.normal())))
    return _csv(tmp_path_factory.mktemp("honest") / "runs.csv", rows)


def _run(capsys, argv):
    assert main(argv) == 0
    out, err = capsys.readouterr()
    assert "nan" not in (out + err).lower(), out + err
    return out


def _check_estimates(doc):
    for family in doc["families"].values():
        for approach in family["approaches"].values():
            for key, e in approach.items():
                if "not_identified" in e:
                    assert e["value"] is None and e["not_identified"], key
                elif e["ci"][0] is not None:
                    assert e["ci"][0] <= e["value"] <= e["ci"][1], (key, e)


def test_fit_prints_no_nan_and_says_why_where_not_identified(mixed, capsys):
    text = _run(capsys, ["fit", *mixed, *FAST])
    doc = json.loads(_run(capsys, ["fit", "--json", *mixed, *FAST]))
    _check_estimates(doc)
    blocks = dict(zip(doc["families"], text.split("\n\n")))
    missing = 0
    for family, fam in doc["families"].items():  # the text says "not identified: why" exactly where JSON has no value
        for approach, est in fam["approaches"].items():
            for key, e in est.items():
                if "not_identified" in e:
                    missing += 1
                    assert f"{key:>9} = not identified: {e['not_identified']}" in blocks[family], (family, key)
    assert missing > 0  # the flat family has quantities that are not identified
    law = doc["families"]["law"]
    assert all("not_identified" not in law[k] for k in ("alpha", "beta", "a", "b"))
    assert law["isoflop_window"]["decades"] == 0.5 and "±0.5 decades" in law["isoflop_window"]["rule"]


def test_export_marks_extrapolation_and_gives_no_number_where_not_identified(mixed, tmp_path, capsys):
    out = tmp_path / "alloc.csv"
    _run(capsys, ["export", *mixed, "--budgets", "1e10,1e15,1e19", "--out", str(out), *FAST])
    text = out.read_text()
    assert "nan" not in text.lower()
    table = pd.read_csv(out).fillna({"extrapolation": "", "not_identified": ""})
    runs = pd.read_csv(mixed[1])
    for _, row in table.iterrows():
        fam = runs[runs["family"] == row["family"]]
        if np.isfinite(row["N_opt"]):
            assert row["N_opt_low"] <= row["N_opt"] <= row["N_opt_high"]
            outside = not fam["N"].min() <= row["N_opt"] <= fam["N"].max()
            assert outside <= ("N_opt" in row["extrapolation"]), row.to_dict()
        else:
            assert row["not_identified"], row.to_dict()
    assert table.loc[table["budget"] == 1e19, "extrapolation"].str.contains("budget 1e\\+19 above").all()
    for fmt in ("md", "tex", "json"):
        _run(capsys, ["export", *mixed, "--budgets", "1e15,1e19", "--format", fmt, *FAST])


def test_too_few_budgets_say_so_instead_of_a_number(tmp_path, capsys):
    rows = [("two", n, c, 1.0 + 0.01 * np.log(n / 1e4) ** 2) for c in (1e12, 1e13) for n in np.geomspace(1e3, 1e5, 5)]
    text = _run(capsys, ["fit", *_csv(tmp_path / "two.csv", rows), "--approach", "all", *FAST])
    assert "isoflop: not identified: Approach 2 (IsoFLOP) needs at least 3 budgets, got 2" in text
    assert "power: not identified: the L(C) fit needs at least 3 budgets" in text


def test_figures_label_no_nan_and_mark_extrapolation(mixed):
    runs = load_runs(csv=mixed[1], n_column="N", c_column="C", loss_column="L", family_column="family")
    result = fit_study(runs, n_boot=30, refine=10)
    frame = result.runs.frame
    for fig in (plots.loss_vs_compute(frame, result.laws, loss_label="loss"),
                plots.isoflop_curves(frame, result.laws, loss_label="loss"),
                plots.allocation(frame, result.laws, budgets=[1e19])):
        texts = [t.get_text() for ax in fig.axes if ax.get_legend() for t in ax.get_legend().get_texts()]
        texts += [t.get_text() for ax in fig.axes for t in ax.texts]
        assert texts and not any("nan" in t.lower() for t in texts), texts
        if fig.axes[0].get_ylabel() == "compute-optimal parameters N_opt":
            assert "outside the trained sizes (extrapolation)" in texts
        plt.close(fig)


def test_isoflop_robust_is_stated_close_to_least_squares_on_clean_runs_and_refused_when_not_positive(mixed, capsys):
    plain = json.loads(_run(capsys, ["fit", "--json", *mixed, *FAST]))["families"]["law"]
    robust = json.loads(_run(capsys, ["fit", "--json", "--isoflop-robust", "0.02", *mixed, *FAST]))["families"]["law"]
    assert "by least squares" in plain["isoflop_window"]["rule"]
    assert "Cauchy loss of scale 0.02" in robust["isoflop_window"]["rule"]
    a_plain, a_robust = (doc["approaches"]["isoflop"]["a"]["value"] for doc in (plain, robust))
    assert a_robust == pytest.approx(a_plain, abs=0.05) and a_robust != a_plain   # 1% noise, no stuck runs
    for argv in (["fit", "--isoflop-robust", "0", *mixed], ["report", "--isoflop-robust", "-1", "--storage",
                                                             "sqlite:///nowhere.db"]):
        assert main(argv) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and "--isoflop-robust must be a positive" in err, err
