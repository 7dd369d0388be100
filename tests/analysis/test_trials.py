"""Loading runs: storages (full-budget COMPLETE trials only, exclusions counted) and CSV tables."""

import numpy as np
import pandas as pd
import pytest

from analysis.trials import group_budgets, load_csv, load_storage
from study.errors import ConfigError, EquiscaleError
from tests.analysis.synthetic import Truth, make_storage

BUDGETS = [1e12, 1e13, 1e14]


@pytest.fixture
def storage(tmp_path):
    url = f"sqlite:///{tmp_path / 'equiscale.db'}"
    make_storage(url, {"gatr": Truth(K=7.0), "transformer": Truth()}, BUDGETS, per_budget=4, batch_size=32)
    return url


def test_storage_keeps_complete_full_budget_trials(storage):
    runs = load_storage(storage)
    frame = runs.frame
    assert len(frame) == 2 * 3 * 4
    assert set(frame["family"]) == {"gatr", "transformer"} and set(frame["budget"]) == set(BUDGETS)
    assert np.all(np.abs(frame["flops"] / frame["budget"] - 1) <= 0.01)
    assert runs.excluded == {"did not use its full budget (|flops_used/C − 1| > 1%)": 6, "trial state FAIL": 6}
    assert runs.batch_sizes == {(f, b): 32 for f in ("gatr", "transformer") for b in BUDGETS}
    assert frame["shape"].iloc[0] == {"width": 64, "depth": 2} and frame["lr"].iloc[0] == 1e-3
    np.testing.assert_allclose(frame["loss"], frame["val_loss"])
    test = load_storage(storage, loss="test_loss").frame
    np.testing.assert_allclose(test["loss"], frame["val_loss"] * 1.01)


def test_missing_storage_file_is_an_error_and_not_created(tmp_path):
    path = tmp_path / "nothing.db"
    with pytest.raises(EquiscaleError, match="not found"):
        load_storage(f"sqlite:///{path}")
    assert not path.exists()


def _csv(tmp_path, **columns):
    path = tmp_path / "runs.csv"
    pd.DataFrame(columns).to_csv(path, index=False)
    return path


def test_csv_with_compute_column_derives_samples(tmp_path):
    path = _csv(tmp_path, N=[1e6, 2e6, 4e6], C=[6e12, 6.03e12, 1.2e13], L=[2.0, 1.9, 1.8])
    frame = load_csv(path, n_column="N", c_column="C", loss_column="L").frame
    np.testing.assert_allclose(frame["samples"], [1e6, 6.03e12 / (6 * 2e6), 5e5])
    assert frame["budget"].nunique() == 2  # 6e12 and 6.03e12 are one budget (0.5% apart)


def test_csv_with_samples_column_and_custom_k(tmp_path):
    path = _csv(tmp_path, N=[1e6, 2e6], D=[1e6, 5e5], L=[2.0, 1.9])
    frame = load_csv(path, n_column="N", d_column="D", loss_column="L", flops_per_param_sample=8.0).frame
    np.testing.assert_allclose(frame["flops"], [8e12, 8e12])


def test_csv_missing_column_is_named(tmp_path):
    path = _csv(tmp_path, N=[1.0], C=[6.0], L=[1.0])
    with pytest.raises(EquiscaleError, match="no column 'tokens'.*--d-column"):
        load_csv(path, n_column="N", d_column="tokens", loss_column="L")


@pytest.mark.parametrize("bad", ["-1", "0", "nan", "inf", "x", ""])
def test_csv_bad_value_is_an_error_naming_row_and_column(tmp_path, bad):
    path = tmp_path / "runs.csv"
    path.write_text(f"N,C,L\n1e6,6e12,2.0\n2e6,6e12,{bad}\n")
    with pytest.raises(EquiscaleError, match="column 'L'.*row 3"):
        load_csv(path, n_column="N", c_column="C", loss_column="L")


def test_csv_needs_exactly_one_of_d_and_c(tmp_path):
    path = _csv(tmp_path, N=[1.0], C=[6.0], L=[1.0])
    with pytest.raises(ConfigError, match="exactly one"):
        load_csv(path, n_column="N", loss_column="L")


def test_group_budgets_joins_neighbours_within_tolerance():
    c = np.array([1.0e12, 1.005e12, 2e12, 1.0e13])
    grouped = group_budgets(c)
    assert grouped[0] == grouped[1] and len(set(grouped)) == 3


def test_the_seconds_axis_reads_train_seconds_where_stored_and_wall_seconds_before():
    from types import SimpleNamespace

    from analysis.trials import _seconds

    assert _seconds(SimpleNamespace(train_seconds=3.0, wall_seconds=5.0)) == 3.0
    assert _seconds(SimpleNamespace(train_seconds=None, wall_seconds=5.0)) == 5.0
