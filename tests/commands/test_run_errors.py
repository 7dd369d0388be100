"""Bad input to `equiscale run|status|dashboard`: one line naming the problem, exit 2, stored data untouched."""

from __future__ import annotations

import os
import socket

import optuna
import pytest

from study.cli import main


@pytest.fixture
def existing_db(tmp_path):
    """An SQLite storage holding one study, plus a snapshot (bytes, mtime) to compare against."""
    path = tmp_path / "kept.db"
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(storage=f"sqlite:///{path}", study_name="transformer/1e+10")
    study.set_user_attr("family", "transformer")
    snapshot = (path.read_bytes(), os.stat(path).st_mtime_ns)
    return path, snapshot


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again when the block ends: nobody listens there


def _run(argv, capsys):
    code = main(argv)
    err = capsys.readouterr().err.strip()
    return code, err


@pytest.mark.parametrize("extra, match", [
    (["--family", "mlp"], "unknown model family 'mlp'"),
    (["--budget", "0"], "budget"),
    (["--budget=-5e10"], "budget"),
    (["--budget", "1e5"], "too small"),
    (["--trials", "0"], "trials"),
    (["--cpus-per-trial", "0"], "cpus-per-trial"),
    (["--address", "ADDRESS"], "unreachable"),
])
def test_bad_run_arguments_exit_2_with_one_line_and_leave_the_storage(existing_db, capsys, extra, match):
    path, snapshot = existing_db
    extra = [f"127.0.0.1:{_closed_port()}" if e == "ADDRESS" else e for e in extra]
    code, err = _run(["run", "--storage", f"sqlite:///{path}", *extra], capsys)
    assert code == 2
    assert len(err.splitlines()) == 1 and match in err
    assert (path.read_bytes(), os.stat(path).st_mtime_ns) == snapshot


def test_malformed_toml_exits_2_naming_the_file(existing_db, tmp_path, capsys):
    path, snapshot = existing_db
    bad = tmp_path / "bad.toml"
    bad.write_text("families = [\n")
    code, err = _run(["run", str(bad), "--storage", f"sqlite:///{path}"], capsys)
    assert code == 2 and "malformed TOML" in err and "bad.toml" in err and len(err.splitlines()) == 1
    assert (path.read_bytes(), os.stat(path).st_mtime_ns) == snapshot


@pytest.mark.parametrize("url, match", [
    ("sqlite:///{tmp}/no/such/dir/x.db", "does not exist"),
    ("postgresql://user@127.0.0.1:{port}/db", "unreachable"),
    ("nonsense", "malformed storage URL"),
    ("sqlite://", "in memory"),
])
def test_unreachable_storage_exits_2_and_creates_nothing(tmp_path, capsys, url, match):
    url = url.format(tmp=tmp_path, port=_closed_port())
    before = sorted(p.name for p in tmp_path.iterdir())
    code, err = _run(["run", "--storage", url], capsys)
    assert code == 2 and match in err and len(err.splitlines()) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_not_a_database_file_is_refused_and_left_as_it_was(tmp_path, capsys):
    path = tmp_path / "notes.db"
    path.write_text("not sqlite")
    code, err = _run(["run", "--storage", f"sqlite:///{path}"], capsys)
    assert code == 2 and "unusable" in err
    assert path.read_text() == "not sqlite"


def test_an_sqlite_file_of_something_else_is_refused_for_a_run_and_left_as_it_was(tmp_path, capsys):
    import sqlite3

    path = tmp_path / "notes.db"
    with sqlite3.connect(path) as connection:                       # a user's own database, no Optuna tables
        connection.execute("CREATE TABLE notes (body TEXT)")
        connection.execute("INSERT INTO notes VALUES ('keep me')")
    connection.close()
    snapshot = (path.read_bytes(), os.stat(path).st_mtime_ns)
    code, err = _run(["run", "--storage", f"sqlite:///{path}", "--family", "transformer"], capsys)
    assert code == 2 and len(err.splitlines()) == 1 and "something else" in err and "notes" in err
    assert (path.read_bytes(), os.stat(path).st_mtime_ns) == snapshot


def test_an_empty_sqlite_file_is_taken_as_a_new_storage(tmp_path):
    from study.storage import check_storage

    path = tmp_path / "empty.db"
    path.touch()                                                    # e.g. made by `touch` or an earlier tool
    check_storage(f"sqlite:///{path}")                              # no error: Optuna may create its tables


@pytest.mark.parametrize("command", ["status", "dashboard"])
def test_reading_commands_refuse_a_missing_storage_without_creating_it(tmp_path, capsys, command):
    code, err = _run([command, "--storage", f"sqlite:///{tmp_path / 'absent.db'}"], capsys)
    assert code == 2 and "not found" in err
    assert not (tmp_path / "absent.db").exists()


@pytest.mark.parametrize("extra, match", [
    (["--cpus-per-trial", "nan"], "cpus-per-trial"),
    (["--cpus-per-trial", "inf"], "cpus-per-trial"),
    (["--gpus-per-trial", "nan"], "gpus-per-trial"),
])
def test_nan_and_inf_resources_exit_2_before_anything_starts(existing_db, capsys, extra, match):
    path, snapshot = existing_db
    code, err = _run(["run", "--storage", f"sqlite:///{path}", *extra], capsys)
    assert code == 2 and len(err.splitlines()) == 1 and match in err
    assert (path.read_bytes(), os.stat(path).st_mtime_ns) == snapshot


def test_a_study_file_that_is_not_utf8_exits_2_naming_it(existing_db, tmp_path, capsys):
    path, snapshot = existing_db
    bad = tmp_path / "latin1.toml"
    bad.write_bytes('families = ["transformer"]  # caf\xe9\nbudgets = [1e10]\n'.encode("latin-1"))
    code, err = _run(["run", str(bad), "--storage", f"sqlite:///{path}"], capsys)
    assert code == 2 and len(err.splitlines()) == 1 and "not UTF-8" in err and "latin1.toml" in err
    assert (path.read_bytes(), os.stat(path).st_mtime_ns) == snapshot


@pytest.mark.parametrize("command", [["status"], ["dashboard"], ["fit"], ["plot"], ["export", "--budgets", "1e12"]])
@pytest.mark.parametrize("content", ["empty", "foreign"])
def test_reading_commands_never_create_tables_in_an_empty_or_foreign_database(tmp_path, capsys, command, content):
    import sqlite3

    path = tmp_path / "other.db"
    connection = sqlite3.connect(path)
    if content == "foreign":
        connection.execute("CREATE TABLE notes (text TEXT)")
        connection.execute("INSERT INTO notes VALUES ('mine')")
    connection.commit()
    connection.close()
    before = path.read_bytes()
    code, err = _run([*command, "--storage", f"sqlite:///{path}"], capsys)
    assert code == 2 and len(err.splitlines()) == 1 and "no Optuna studies" in err
    assert path.read_bytes() == before


def test_a_run_estimated_above_the_threshold_needs_yes_and_writes_nothing(existing_db, capsys):
    path, snapshot = existing_db
    code, err = _run(["run", "--storage", f"sqlite:///{path}", "--family", "transformer", "--budget", "1e16",
                      "--trials", "2"], capsys)
    assert code == 2 and "add --yes" in err and "2e+16 training FLOPs" in err
    assert (path.read_bytes(), os.stat(path).st_mtime_ns) == snapshot


def test_the_estimate_counts_only_the_trials_still_to_run(tmp_path):
    from study.config import load_config, resolve
    from study.estimate import estimate
    from study.resume import remaining_trials
    from study.schema import study_name

    config = load_config()
    run = resolve(config)
    url = f"sqlite:///{tmp_path / 'e.db'}"
    left = remaining_trials(url, run)         # a missing storage: every study's whole target, and no file made
    assert left == {spec.name: config.trials for spec in run.studies} and not (tmp_path / "e.db").exists()
    full = estimate(run, remaining=left, rate=1e10)
    assert full.flops == config.trials * len(config.families) * sum(config.budgets)
    budget = config.budgets[0]
    part = estimate(run, remaining={**left, study_name("transformer", budget): 0}, rate=1e10)
    assert full.flops - part.flops == config.trials * budget and full.trials - part.trials == config.trials
    assert part.seconds == part.flops / (1e10 * part.slots * 0.3)


def test_a_read_only_sqlite_storage_is_refused_for_a_run_and_left_as_it_was(existing_db, capsys, monkeypatch):
    path, snapshot = existing_db
    monkeypatch.setattr(os, "access", lambda p, mode: not (str(p) == str(path) and mode == os.W_OK))
    code, err = _run(["run", "--storage", f"sqlite:///{path}", "--family", "transformer"], capsys)
    assert code == 2 and len(err.splitlines()) == 1 and "read-only" in err
    assert (path.read_bytes(), os.stat(path).st_mtime_ns) == snapshot


def test_an_address_where_something_else_listens_is_refused_and_creates_nothing(existing_db, capsys):
    import threading
    from http.server import HTTPServer, SimpleHTTPRequestHandler

    path, snapshot = existing_db
    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Quiet)                         # a web server, not Ray
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        code, err = _run(["run", "--storage", f"sqlite:///{path}", "--family", "transformer",
                          "--address", f"127.0.0.1:{server.server_port}"], capsys)
    finally:
        server.shutdown()
    assert code == 2 and len(err.splitlines()) == 1 and "does not answer like a Ray cluster" in err
    assert (path.read_bytes(), os.stat(path).st_mtime_ns) == snapshot
