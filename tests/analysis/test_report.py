"""`equiscale report` end to end on stored compute and data studies: every section, numbers read back from
the storage independently, verdicts that move with the data, and bad input (exit 2, one line, nothing written)."""

from __future__ import annotations

import base64
import io
import os
import re

import numpy as np
import optuna
import pandas as pd
import pytest

from analysis.report import VERDICTS
from study.cli import main
from study.errors import EquiscaleError
from study.output import write_files
from tests.analysis.synthetic import Truth, make_storage
from tests.analysis.synthetic_data import DataTruth, make_data_storage

COMPUTE = {"gatr": Truth(E=0.02, A=5.0, B=40.0, alpha=0.30, beta=0.35, K=7.0),
           "transformer": Truth(E=0.03, A=5.0, B=40.0, alpha=0.30, beta=0.30, K=6.5),
           "transformer-aug": Truth(E=0.028, A=5.0, B=40.0, alpha=0.30, beta=0.31, K=6.5)}
ERRORS = {"gatr": 2e-7, "transformer": 0.3, "transformer-aug": 0.04}
BUDGETS = [1e12, 1e13, 1e14, 1e15]
DATA = {"gatr": DataTruth(0.5, 0.40, slow=0.5, equivariance_error=3e-7),
        "transformer": DataTruth(0.9, 0.35, slow=2.0, equivariance_error=0.25),
        "transformer-aug": DataTruth(0.51, 0.40, slow=3.0, equivariance_error=0.03)}
SIZES = [128, 256, 512, 1024, 2048, 4096]
FAST = ["--bootstrap", "40"]
SECTIONS = ["## Claims", "## Loss vs compute", "## Loss ratio per budget", "## Held-out check", "## IsoFLOP curves",
            "## Compute-optimal parameters and samples", "## Allocation table", "## Data efficiency",
            "## Claim 1 by training length", "## Equivariance error"]
FIGURES = ["loss_vs_compute", "isoflop", "allocation", "data_efficiency", "length_ratios"]


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    root = tmp_path_factory.mktemp("report")
    compute, data, both = (f"sqlite:///{root / name}.db" for name in ("compute", "data", "both"))
    make_storage(compute, COMPUTE, BUDGETS, per_budget=6, errors=ERRORS)
    stored = make_data_storage(data, DATA, SIZES, noise=0.01, seed=2)
    make_storage(both, COMPUTE, BUDGETS, per_budget=6, errors=ERRORS)
    make_data_storage(both, DATA, SIZES, noise=0.01, seed=2)
    return {"compute": compute, "data": data, "both": both, "root": root, "stored": stored}


def _report(capsys, out, *urls, extra=()):
    argv = ["report", *[a for u in urls for a in ("--storage", u)], "--out", str(out), *FAST, *extra]
    assert main(argv) == 0, capsys.readouterr().err
    capsys.readouterr()
    return (out / "report.md").read_text()


@pytest.fixture(scope="module")
def full(stores, tmp_path_factory):
    out = tmp_path_factory.mktemp("full") / "report"
    assert main(["report", "--storage", stores["compute"], "--storage", stores["data"], "--out", str(out), *FAST]) == 0
    return out, (out / "report.md").read_text()


def _complete(url: str, name: str) -> list[optuna.trial.FrozenTrial]:
    study = optuna.load_study(study_name=name, storage=url)
    return [t for t in study.get_trials() if t.state == optuna.trial.TrialState.COMPLETE]


def _full_budget(url: str, family: str, budget: float) -> list[optuna.trial.FrozenTrial]:
    return [t for t in _complete(url, f"{family}/{budget:.0e}") if abs(t.user_attrs["flops_used"] / budget - 1) <= 0.01]


def _table_after(md: str, anchor: str) -> list[list[str]]:
    """The rows (cells) of the first Markdown table after the line containing `anchor`."""
    lines = md.splitlines()
    start = next(i for i, line in enumerate(lines) if anchor in line)
    rows = []
    for line in lines[start + 1:]:
        if line.startswith("|"):
            rows.append([c.strip() for c in line.strip("|").split(" | ")])
        elif rows:
            break
    return rows[2:]  # without the head and the ---


def test_every_section_figure_and_file(full):
    out, md = full
    for section in SECTIONS:
        assert section in md, section
    assert "Missing" not in md
    assert sorted(p.name for p in (out / "figures").iterdir()) == sorted(f"{f}.png" for f in FIGURES)
    html = (out / "report.html").read_text()
    images = re.findall(r'src="data:image/png;base64,([^"]+)"', html)
    assert len(images) == len(FIGURES)
    assert all(base64.b64decode(i)[:8] == b"\x89PNG\r\n\x1a\n" for i in images)
    assert "<h2>Claims</h2>" in html and "<table>" in html
    for text in (md, re.sub(r"base64,[^\"]+", "", html), (out / "allocation.csv").read_text()):
        assert "nan" not in text.lower()
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".")]  # no temporary left


def test_each_claim_has_a_verdict(full):
    _, md = full
    for claim in (1, 2, 3):
        line = next(line for line in md.splitlines() if line.startswith(f"- **Claim {claim}**"))
        assert re.search(r"\): \*\*(" + "|".join(VERDICTS) + r")\*\*\. ", line), line


def test_best_loss_per_budget_and_ratio_are_the_stored_ones(full, stores):
    _, md = full
    url = stores["compute"]
    rows = {r[0]: r[1:] for r in _table_after(md, "per budget (the point with the lowest mean loss")}
    ratios = {r[0]: r[1:] for r in _table_after(md, "Best loss of gatr ÷ best loss of each baseline")}
    families = sorted(COMPUTE)
    assert len(rows) == len(BUDGETS)
    for budget in BUDGETS:
        best = {f: min(t.value for t in _full_budget(url, f, budget)) for f in families}
        cells = rows[f"{budget:.3g}"]
        for f, cell in zip(families, cells):
            assert cell.startswith(f"{best[f]:.4g} (N = "), (f, cell)
        selected = {f: min(_full_budget(url, f, budget), key=lambda t: t.value).user_attrs["test_loss"] for f in families}
        cells = ratios[f"{budget:.3g}"]
        for base, val, test in zip([f for f in families if f != "gatr"], cells[0::2], cells[1::2]):
            assert val.startswith(f"{best['gatr'] / best[base]:.4g} ["), (base, val)
            assert test.startswith(f"{selected['gatr'] / selected[base]:.4g}"), (base, test)  # same runs' test


def test_held_out_row_uses_the_largest_budget(full, stores):
    _, md = full
    rows = {r[0]: r for r in _table_after(md, "fitted to every budget but the largest")}
    for f in COMPUTE:
        measured = min(t.value for t in _full_budget(stores["compute"], f, BUDGETS[-1]))
        # an independent fit: least squares of log(best loss) on log C over the other budgets
        c = np.array(BUDGETS[:-1])
        best = [min(t.value for t in _full_budget(stores["compute"], f, b)) for b in c]
        slope, intercept = np.polyfit(np.log(c), np.log(best), 1)
        predicted = np.exp(intercept) * BUDGETS[-1] ** slope
        row = rows[f]
        assert row[1] == f"{BUDGETS[-1]:.3g}" and row[3] == f"{measured:.4g}"
        assert row[4].startswith(f"{predicted:.4g} [")
        assert row[5].startswith(f"{predicted / measured - 1:+.1%}")


def test_equivariance_error_is_the_stored_one(full, stores):
    _, md = full
    rows = {(r[0], r[1]): r for r in _table_after(md, "`equivariance_error`")}
    for f in COMPUTE:
        errors = [t.user_attrs["equivariance_error"] for b in BUDGETS for t in _full_budget(stores["compute"], f, b)]
        row = rows[(f, "compute")]
        assert row[2:] == [str(len(errors)), f"{np.median(errors):.3g}", f"{min(errors):.3g}", f"{max(errors):.3g}"]
    for f, truth in DATA.items():
        errors = [t.user_attrs["equivariance_error"] for n in SIZES for t in _complete(stores["data"], f"data/{f}/{n}")]
        assert rows[(f, "data")][2:] == [str(len(errors)), *[f"{truth.equivariance_error:.3g}"] * 3]


def test_allocation_csv_rows(full, stores, tmp_path, capsys):
    out, md = full
    table = pd.read_csv(out / "allocation.csv")
    assert len(table) == len(COMPUTE) * len(BUDGETS) * 2
    assert sorted(table["budget"].unique()) == BUDGETS and set(table["family"]) == set(COMPUTE)
    assert set(table["approach"]) == {"parametric", "isoflop"}
    ok = table["N_opt"].notna()
    assert ok.any()
    assert (table.loc[ok, "N_opt_low"] <= table.loc[ok, "N_opt"]).all()
    assert (table.loc[ok, "N_opt"] <= table.loc[ok, "N_opt_high"]).all()
    for _, row in table[ok].iterrows():  # a size outside the family's trained runs is marked
        sizes = [t.user_attrs["params"] for b in BUDGETS for t in _full_budget(stores["compute"], row["family"], b)]
        outside = not min(sizes) <= row["N_opt"] <= max(sizes)
        assert outside == ("N_opt" in str(row["extrapolation"])), row.to_dict()
    # the same table as `equiscale export` with the same bootstrap
    export = tmp_path / "export.csv"
    assert main(["export", "--storage", stores["compute"], "--budgets", ",".join(map(str, BUDGETS)),
                 "--out", str(export), *FAST]) == 0
    capsys.readouterr()
    assert export.read_text() == (out / "allocation.csv").read_text()
    md_rows = _table_after(md, "also `allocation.csv`")
    assert len(md_rows) == len(table)


def test_data_numbers_are_the_stored_ones(full, stores):
    _, md = full
    stored = stores["stored"]
    rows = {r[0]: r[1:] for r in _table_after(md, "per training-set size at its longest training length")}
    families = sorted(DATA)
    for n in SIZES:
        for f, cell in zip(families, rows[str(n)]):
            assert cell.startswith(f"{min(stored[(f, n)]):.4g} ("), (n, f, cell)
    for n in SIZES:   # v1: one length per size, so one row per size's table (steps, 3 families, 2 ratios × val/test)
        (row,) = _table_after(md, f"n = {n:,} scenes")
        plain_vs_gatr = min(stored[("transformer", n)]) / min(stored[("gatr", n)])
        aug_vs_gatr = min(stored[("transformer-aug", n)]) / min(stored[("gatr", n)])
        assert row[0] == "4,096" and row[1].startswith(f"{min(stored[('gatr', n)]):.4g} / ")
        assert row[4].startswith(f"{plain_vs_gatr:.4g}") and row[6].startswith(f"{aug_vs_gatr:.4g}")
    laws = {r[0]: r for r in _table_after(md, "L(n) = coef·n^(−α) through the best point")}
    for f, truth in DATA.items():
        alpha = float(laws[f][2].split()[0])
        low, high = (float(x) for x in re.search(r"\[(.*), (.*)\]", laws[f][2]).groups())
        assert low <= truth.alpha <= high and alpha == pytest.approx(truth.alpha, abs=0.02)


def test_verdicts_follow_the_numbers(full):
    _, md = full
    claims = {k: next(line for line in md.splitlines() if line.startswith(f"- **Claim {k}**")) for k in (1, 2, 3)}
    # GATr ~0.55× the transformer: data efficiency supported; one length per size (v1): the length half not tested
    assert "**not shown**" in claims[1]
    assert "gatr better at every budget: supported" in claims[2]
    assert "judged at the small sizes n = 128, 256, 512" in claims[1]
    assert ("more data-efficient than transformer: supported; transformer-aug closes the gap given enough training: "
            "not tested") in claims[1]
    assert "1 training length(s) (needs 3)" in claims[1]


def test_a_baseline_better_at_a_small_size_is_not_supported(tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 'worse.db'}"
    make_data_storage(url, {**DATA, "transformer": DataTruth(0.4, 0.40, slow=3.0)}, SIZES[:4])
    md = _report(capsys, tmp_path / "out", url)
    claim = next(line for line in md.splitlines() if line.startswith("- **Claim 1**"))
    assert "**not supported**" in claim and "more data-efficient than transformer: not supported" in claim, claim


def test_one_storage_with_both_kinds_gives_the_same_report(full, stores, tmp_path, capsys):
    _, md = full
    both = _report(capsys, tmp_path / "both", stores["both"])
    strip = lambda text: text.split("## Claims", 1)[1]  # noqa: E731 - the storages line differs
    assert strip(both) == strip(md)


def test_compute_only_says_how_to_add_the_data_study(stores, tmp_path, capsys):
    md = _report(capsys, tmp_path / "c", stores["compute"])
    data = md.split("## Data efficiency", 1)[1]
    assert data.lstrip().startswith("Missing") and 'kind = "data"' in data and "--storage" in data
    assert re.search(r"\*\*Claim 1\*\* .*: \*\*cannot be judged\*\*\. no data study", md)
    assert (tmp_path / "c" / "allocation.csv").is_file()
    assert not (tmp_path / "c" / "figures" / "data_efficiency.png").exists()


def test_data_only_says_how_to_add_the_compute_study(stores, tmp_path, capsys):
    md = _report(capsys, tmp_path / "d", stores["data"])
    assert "## Compute studies\n\nMissing" in md and "## Loss vs compute" not in md
    for claim in (2, 3):
        assert re.search(rf"\*\*Claim {claim}\*\* .*: \*\*cannot be judged\*\*\. no compute study", md)
    assert not (tmp_path / "d" / "allocation.csv").exists()
    assert (tmp_path / "d" / "figures" / "data_efficiency.png").is_file()


def test_rerun_into_the_same_folder_replaces_the_report(stores, tmp_path, capsys):
    out = tmp_path / "again"
    out.mkdir()
    (out / "mine.txt").write_text("kept")
    first = _report(capsys, out, stores["data"])
    second = _report(capsys, out, stores["data"], extra=["--seed", "1"])
    assert first != second and (out / "mine.txt").read_text() == "kept"
    assert sorted(p.name for p in out.iterdir()) == ["figures", "mine.txt", "report.html", "report.md"]


# --- bad input: exit 2, one line on stderr, nothing written ------------------------------------------------

def _refused(capsys, argv, *needles, out=None):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    for needle in needles:
        assert needle in err, err
    if out is not None:
        assert not out.exists()


def test_storage_without_studies(tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    optuna.storages.RDBStorage(url)  # Optuna's tables, no study
    _refused(capsys, ["report", "--storage", url, "--out", str(tmp_path / "r")], "holds no studies", out=tmp_path / "r")


def test_missing_storage_file_is_not_created(stores, tmp_path, capsys):
    missing = tmp_path / "none.db"
    _refused(capsys, ["report", "--storage", stores["compute"], "--storage", f"sqlite:///{missing}",
                      "--out", str(tmp_path / "r")], "not found", out=tmp_path / "r")
    assert not missing.exists()


def test_out_that_is_a_file(stores, tmp_path, capsys):
    (tmp_path / "r").write_text("mine")
    _refused(capsys, ["report", "--storage", stores["data"], "--out", str(tmp_path / "r")], "not a directory")
    assert (tmp_path / "r").read_text() == "mine"


def test_out_in_a_read_only_place(stores, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(os, "access", lambda path, mode: False)  # read-only, even for root
    _refused(capsys, ["report", "--storage", stores["data"], "--out", str(tmp_path / "a" / "r")], "writable",
             out=tmp_path / "a")


def test_storage_given_twice_and_bad_budgets(stores, tmp_path, capsys):
    _refused(capsys, ["report", "--storage", stores["data"], "--storage", stores["data"], "--out", str(tmp_path / "r")],
             "given twice", out=tmp_path / "r")
    _refused(capsys, ["report", "--storage", stores["compute"], "--budgets", "1e12,x", "--out", str(tmp_path / "r")],
             "'x'", out=tmp_path / "r")


def test_a_failed_write_leaves_nothing(tmp_path, monkeypatch):
    def full_device(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "rename", full_device)
    with pytest.raises(EquiscaleError, match="No space left on device"):
        write_files(tmp_path / "new" / "report", {"report.md": b"x", "figures/a.png": b"y"})
    assert list(tmp_path.iterdir()) == []
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "report.md").write_bytes(b"before")
    monkeypatch.setattr(os, "replace", full_device)
    with pytest.raises(EquiscaleError, match="No space left on device"):
        write_files(tmp_path / "old", {"report.md": b"after"})
    assert sorted(p.name for p in (tmp_path / "old").iterdir()) == ["report.md"]
    assert (tmp_path / "old" / "report.md").read_bytes() == b"before"


def test_nested_new_folder_appears_whole(tmp_path):
    written = write_files(tmp_path / "a" / "b", {"report.md": b"x", "figures/f.png": b"y"})
    assert sorted(str(p.relative_to(tmp_path)) for p in written) == ["a/b/figures/f.png", "a/b/report.md"]
    assert (tmp_path / "a" / "b" / "figures" / "f.png").read_bytes() == b"y"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a"]


def test_png_figures_open(full):
    out, _ = full
    from matplotlib import image

    for name in FIGURES:
        assert image.imread(io.BytesIO((out / "figures" / f"{name}.png").read_bytes())).ndim == 3


@pytest.mark.parametrize("content", ["empty", "foreign"])
def test_an_empty_or_foreign_database_is_left_untouched(tmp_path, capsys, content):
    import sqlite3

    path = tmp_path / "other.db"
    connection = sqlite3.connect(path)
    if content == "foreign":
        connection.execute("CREATE TABLE notes (text TEXT)")
    connection.commit()
    connection.close()
    before = path.read_bytes()
    _refused(capsys, ["report", "--storage", f"sqlite:///{path}", "--out", str(tmp_path / "r")], "no Optuna studies",
             out=tmp_path / "r")
    assert path.read_bytes() == before


def test_too_little_data_says_why_instead_of_numbers(tmp_path, capsys):
    compute, data = f"sqlite:///{tmp_path / 'c.db'}", f"sqlite:///{tmp_path / 'd.db'}"
    make_storage(compute, {"gatr": Truth()}, [1e12, 1e13], per_budget=3)
    make_data_storage(data, {"gatr": DataTruth(1.0, 0.3), "transformer": DataTruth(2.0, 0.3)}, [100, 200],
                      lrs=(1e-3,), penalties=(1.0,))
    out = tmp_path / "r"
    md = _report(capsys, out, compute, data)
    assert "nan" not in md.lower() and "nan" not in (out / "allocation.csv").read_text().lower()
    for why in ("the L(C) fit needs at least 3 budgets, got 2", "needs at least 4 budgets (3 to fit without the largest)",
                "Approach 2 (IsoFLOP) needs at least 3 budgets, got 2",
                "the data law needs at least 3 training-set sizes, got 2", "a single run of one family: no interval",
                "No ratio: it needs compute studies of `gatr` and of at least one of its baselines"):
        assert why in md, why
    for claim in (2, 3):
        assert re.search(rf"\*\*Claim {claim}\*\* .*: \*\*cannot be judged\*\*", md)
    assert re.search(r"\*\*Claim 1\*\* .*: \*\*not shown\*\*", md)  # one lr per size: ratios without intervals
