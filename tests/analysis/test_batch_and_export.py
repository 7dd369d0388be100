"""Per-study batch sizes reach the allocation table (steps_opt = D_opt ÷ that budget's stored batch size), and
`equiscale export` writes 'n/a' rows with the reason, exit 0, when one family's law is not identified."""

import json

import numpy as np
import optuna
import pandas as pd
import pytest

from study.cli import main
from tests.analysis.synthetic import Truth, make_storage

BUDGETS = [1e12, 1e13, 1e14, 1e15]
BATCH = {1e12: 16, 1e13: 256, 1e14: 256, 1e15: 256}
FAST = ["--bootstrap", "20", "--refine", "20"]


@pytest.fixture(scope="module")
def storage(tmp_path_factory):
    url = f"sqlite:///{tmp_path_factory.mktemp('batch') / 'b.db'}"
    make_storage(url, {"gatr": Truth(K=7.0), "transformer": Truth()}, BUDGETS, per_budget=8, batch_size=BATCH)
    return url


def _stored_batch(url: str, family: str, budget: float) -> int:
    return optuna.load_study(study_name=f"{family}/{budget:.0e}", storage=url).user_attrs["batch_size"]


def test_steps_use_each_budgets_own_batch_size(storage, tmp_path, capsys):
    out = tmp_path / "alloc.csv"
    budgets = [*BUDGETS, 3e11, 3e14]
    assert main(["export", "--storage", storage, "--budgets", ",".join(map(str, budgets)), "--out", str(out),
                 *FAST]) == 0
    table = pd.read_csv(out)
    rows = table[np.isfinite(table["steps_opt"])]
    assert set(rows["budget"]) >= set(BUDGETS) and set(rows["family"]) == {"gatr", "transformer"}
    for _, row in rows.iterrows():
        if row["budget"] in BATCH:
            batch = _stored_batch(storage, row["family"], row["budget"])
            assert not isinstance(row["batch_note"], str)                       # a trained budget: no note
        else:   # between or outside the trained budgets: the nearest one's batch, and the note says so
            nearest = min(BUDGETS, key=lambda b: abs(np.log(b / row["budget"])))
            batch = _stored_batch(storage, row["family"], nearest)
            assert f"batch size {batch} of the nearest trained budget {nearest:.3g}" in row["batch_note"]
        assert row["steps_opt"] == pytest.approx(row["D_opt"] / batch, rel=1e-5)
        assert row["steps_opt_low"] == pytest.approx(row["D_opt_low"] / batch, rel=1e-5)
    small = rows[rows["budget"] == 1e12]
    np.testing.assert_allclose(small["steps_opt"], small["D_opt"] / 16, rtol=1e-5)   # not the 256 of the others


@pytest.fixture(scope="module")
def partly(tmp_path_factory):
    """gatr with 2 trials per budget (no IsoFLOP parabola), transformer with 8."""
    url = f"sqlite:///{tmp_path_factory.mktemp('partly') / 'p.db'}"
    make_storage(url, {"transformer": Truth()}, BUDGETS, per_budget=8)
    make_storage(url, {"gatr": Truth(K=7.0)}, BUDGETS, per_budget=2, seed=5)
    return url


@pytest.mark.parametrize("fmt", ["csv", "md", "tex", "json"])
def test_export_writes_na_rows_for_a_law_that_is_not_identified(partly, capsys, fmt):
    assert main(["export", "--storage", partly, "--budgets", "1e13,1e16", "--format", fmt, "--bootstrap", "0"]) == 0
    out = capsys.readouterr().out
    if fmt == "csv":
        table = pd.read_csv(pd.io.common.StringIO(out))
    elif fmt == "json":
        table = pd.DataFrame(json.loads(out))
    else:
        lines = [line for line in out.splitlines() if line.startswith("|") or " & " in line]
        gatr_iso = [line for line in lines if line.startswith(("| gatr", "gatr")) and "isoflop" in line]
        assert len(gatr_iso) == 2 and all("n/a" in line and "at least 3 trials per budget" in line
                                          for line in gatr_iso), out
        transformer = [line for line in lines if "transformer" in line and "isoflop" in line]
        assert len(transformer) == 2 and not any("n/a" in line for line in transformer)
        return
    assert len(table) == 2 * 2 * 2                                  # every family × budget × approach
    gatr = table[(table["family"] == "gatr") & (table["approach"] == "isoflop")]
    assert gatr["N_opt"].isna().all() and gatr["not_identified"].str.contains("at least 3 trials per budget").all()
    assert table[table["family"] == "transformer"]["N_opt"].notna().all()
    assert "val_loss" in table.columns and "loss" not in table.columns       # the column says which split


def test_export_of_the_unidentified_approach_alone(partly, capsys):
    assert main(["export", "--storage", partly, "--budgets", "1e13", "--approach", "isoflop", "--bootstrap", "0"]) == 0
    table = pd.read_csv(pd.io.common.StringIO(capsys.readouterr().out))
    assert list(table["family"]) == ["gatr", "transformer"] and table["N_opt"].isna().tolist() == [True, False]
