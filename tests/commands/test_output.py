"""Where export and plot write: never over a study storage, a folder or a read-only place; one line, exit 2."""

from __future__ import annotations

import os

import optuna
import pytest

from study.cli import main
from study.errors import EquiscaleError
from study.output import check_output_dir, check_output_file, write_text


@pytest.fixture
def storage(tmp_path):
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    path = tmp_path / "equiscale.db"
    optuna.create_study(storage=f"sqlite:///{path}", study_name="x")
    return path


def test_export_out_naming_the_storage_is_refused_and_the_storage_kept(storage, capsys, monkeypatch):
    monkeypatch.chdir(storage.parent)
    before = storage.read_bytes()
    code = main(["export", "--storage", f"sqlite:///{storage}", "--budgets", "1e12", "--out", "equiscale.db"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "SQLite database" in err
    assert storage.read_bytes() == before


def test_export_out_to_a_directory_is_refused(storage, tmp_path, capsys):
    code = main(["export", "--storage", f"sqlite:///{storage}", "--budgets", "1e12", "--out", str(tmp_path)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "is a directory" in err


def test_plot_out_that_is_a_file_is_refused_before_fitting(storage, tmp_path, capsys):
    (tmp_path / "figures").write_text("mine")
    code = main(["plot", "--storage", f"sqlite:///{storage}", "--out", str(tmp_path / "figures")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "not a directory" in err
    assert (tmp_path / "figures").read_text() == "mine"


def test_a_failed_write_leaves_the_earlier_file_and_no_temporary(tmp_path, monkeypatch):
    target = tmp_path / "table.csv"
    target.write_text("old")

    def full_device(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", full_device)
    with pytest.raises(EquiscaleError, match="No space left on device"):
        write_text(target, "new")
    assert target.read_text() == "old" and sorted(p.name for p in tmp_path.iterdir()) == ["table.csv"]


def test_read_only_places_are_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(os, "access", lambda path, mode: False)   # a read-only folder, even for root
    with pytest.raises(EquiscaleError, match="not writable"):
        check_output_file(tmp_path / "t.csv")
    with pytest.raises(EquiscaleError, match="writable"):
        check_output_dir(tmp_path / "figures")


def test_a_header_only_csv_is_one_line(tmp_path, capsys):
    csv = tmp_path / "runs.csv"
    csv.write_text("params,training_flops,loss\n")
    code = main(["fit", "--from-csv", str(csv), "--n-column", "params", "--c-column", "training_flops",
                 "--loss-column", "loss"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "no rows" in err
