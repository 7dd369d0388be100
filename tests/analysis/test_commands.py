"""`equiscale fit`, `export` and `plot` end to end on a synthetic storage and on CSV input."""

import json

import numpy as np
import pandas as pd
import pytest

from study.cli import main
from tests.analysis.synthetic import Truth, draw_runs, make_storage

FAMILIES = {"gatr": Truth(E=0.02, A=5.0, B=40.0, alpha=0.30, beta=0.35, K=7.0, kappa=-0.02),
            "transformer": Truth(E=0.03, A=5.0, B=40.0, alpha=0.30, beta=0.30, K=6.5)}
FAST = ["--bootstrap", "20", "--refine", "20", "--jobs", "1"]


@pytest.fixture(scope="module")
def storage(tmp_path_factory):
    url = f"sqlite:///{tmp_path_factory.mktemp('store') / 'equiscale.db'}"
    make_storage(url, FAMILIES, [1e12, 1e13, 1e14, 1e15, 1e16], per_budget=8, batch_size=64)
    return url


def test_fit_json_has_every_law_with_intervals(storage, capsys):
    assert main(["fit", "--storage", storage, "--json", *FAST]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert set(doc["families"]) == set(FAMILIES)
    for family, truth in FAMILIES.items():
        fam = doc["families"][family]
        for key in ("E", "A", "B", "alpha", "beta", "a", "b"):
            assert len(fam[key]["ci"]) == 2 and fam[key]["ci"][0] <= fam[key]["ci"][1], key
        assert fam["flops_model"]["K"] == pytest.approx(truth.K, rel=0.05)
        assert fam["flops_model"]["kappa"] == pytest.approx(truth.kappa, abs=0.01)
        assert set(fam["approaches"]) >= {"power", "isoflop", "parametric"}
        assert fam["runs"] == 40
    assert "gatr/transformer" in doc["loss_ratios"]


def test_fit_text_reports_exclusions(storage, capsys):
    assert main(["fit", "--storage", storage, "--approach", "isoflop", *FAST]) == 0
    out, err = capsys.readouterr()
    assert "Approach 2" in out and "Approach 3" not in out
    assert "left out 10 run(s): trial state FAIL" in err


@pytest.mark.slow
def test_export_formats(storage, tmp_path, capsys):
    out = tmp_path / "alloc.csv"
    assert main(["export", "--storage", storage, "--budgets", "1e17,1e18", "--out", str(out), *FAST]) == 0
    table = pd.read_csv(out)
    assert len(table) == 2 * 2 * 2  # families × budgets × approaches
    assert set(table["approach"]) == {"parametric", "isoflop"}
    np.testing.assert_allclose(table["steps_opt"], table["D_opt"] / 64, rtol=1e-5)  # CSV keeps 6 digits
    assert (table["N_opt_low"] <= table["N_opt"]).all() and (table["N_opt"] <= table["N_opt_high"]).all()
    for fmt, marker in (("md", "| family |"), ("tex", r"\begin{tabular}"), ("json", '"N_opt_high"')):
        assert main(["export", "--storage", storage, "--budgets", "1e17", "--format", fmt, *FAST]) == 0
        assert marker in capsys.readouterr().out


def test_plot_writes_png_and_svg(storage, tmp_path, capsys):
    assert main(["plot", "--storage", storage, "--out", str(tmp_path / "figs"), *FAST]) == 0
    names = {p.name for p in (tmp_path / "figs").iterdir()}
    assert names == {f"{n}.{e}" for n in ("loss_vs_compute", "isoflop", "allocation") for e in ("png", "svg")}
    assert (tmp_path / "figs" / "loss_vs_compute.svg").read_text().lstrip().startswith("<?xml")
    assert (tmp_path / "figs" / "isoflop.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def _one_line_error(capsys, argv, *needles):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    for needle in needles:
        assert needle in err, err


def test_errors_are_one_line_and_name_the_problem(storage, tmp_path, capsys):
    csv = tmp_path / "runs.csv"
    csv.write_text("N,C,L\n1e6,6e12,2.0\n2e6,6e12,-1\n")
    _one_line_error(capsys, ["fit", "--from-csv", str(csv), "--n-column", "N", "--c-column", "C",
                             "--loss-column", "loss"], "no column 'loss'", "--loss-column")
    _one_line_error(capsys, ["fit", "--from-csv", str(csv), "--n-column", "N", "--c-column", "C",
                             "--loss-column", "L"], "column 'L'", "row 3")
    _one_line_error(capsys, ["fit", "--storage", f"sqlite:///{tmp_path / 'none.db'}"], "not found")
    _one_line_error(capsys, ["export", "--storage", storage, "--budgets", "1e17,abc"], "'abc'")
    _one_line_error(capsys, ["fit", "--storage", storage, "--approach", "isoflop", "--bootstrap", "-1"], "--bootstrap")


def test_too_few_budgets_named_when_approach_requested(tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 'small.db'}"
    make_storage(url, {"gatr": Truth()}, [1e12, 1e13], per_budget=4)
    _one_line_error(capsys, ["fit", "--storage", url, "--approach", "isoflop"], "at least 3 budgets, got 2")


def test_fit_from_csv_with_compute_column(tmp_path, capsys):
    truth = Truth(E=0.2, A=60.0, B=200.0, alpha=0.34, beta=0.37)
    c, n, d, loss = draw_runs(truth, np.geomspace(1e13, 1e17, 5), 12, noise=0.0, spread=30.0)
    csv = tmp_path / "runs.csv"
    pd.DataFrame({"params": n, "flops": 6 * n * d, "loss": loss}).to_csv(csv, index=False)
    argv = ["fit", "--from-csv", str(csv), "--n-column", "params", "--c-column", "flops", "--loss-column", "loss",
            "--approach", "parametric", "--json", *FAST]
    assert main(argv) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["alpha"]["value"] == pytest.approx(truth.alpha, abs=1e-3)
    assert doc["beta"]["value"] == pytest.approx(truth.beta, abs=1e-3)
    assert doc["a"]["value"] == pytest.approx(truth.beta / (truth.alpha + truth.beta), abs=1e-3)
