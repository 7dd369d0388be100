"""Output files (`export --out`, the report's files): written through symbolic links, never over anything but a
regular file, with the umask's mode (an existing file keeps its own), and a failed write is one line, exit 2, no
partial file. Devices are only ever checked here, never written to: a FIFO stands in for them."""

from __future__ import annotations

import errno
import os
import socket
import stat

import numpy as np
import pandas as pd
import pytest

from study import output
from study.cli import main
from study.errors import EquiscaleError
from study.output import check_output_file, write_files, write_text


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture
def umask():
    """Set the umask for one test; restored afterwards."""
    old = os.umask(0o022)
    yield os.umask
    os.umask(old)


@pytest.fixture
def fifo(tmp_path):
    path = tmp_path / "pipe.csv"
    os.mkfifo(path)
    return path


@pytest.fixture(scope="module")
def runs_csv(tmp_path_factory):
    """Runs of a known law (one family, five budgets) as a CSV for `export --from-csv`."""
    from tests.analysis.synthetic import Truth, draw_runs

    _, n, d, loss = draw_runs(Truth(E=0.2, A=60.0, B=200.0, alpha=0.34, beta=0.37), np.geomspace(1e13, 1e17, 5), 8,
                              noise=0.01, spread=30.0)
    path = tmp_path_factory.mktemp("runs") / "runs.csv"
    pd.DataFrame({"family": "law", "N": n, "C": 6 * n * d, "L": loss}).to_csv(path, index=False)
    return path


def _export(runs_csv, out, capsys) -> tuple[int, str]:
    code = main(["export", "--from-csv", str(runs_csv), "--n-column", "N", "--c-column", "C", "--loss-column", "L",
                 "--family-column", "family", "--budgets", "1e15", "--bootstrap", "0", "--out", str(out)])
    return code, capsys.readouterr().err.strip()


# ---------------------------------------------------------------------------------------- not a regular file

@pytest.mark.parametrize("device", ["/dev/null", "/dev/full"])
def test_a_device_is_refused_by_the_check(device):
    if not os.path.exists(device):
        pytest.skip(f"no {device}")
    with pytest.raises(EquiscaleError, match="is a device, not a regular file"):
        check_output_file(device)
    assert stat.S_ISCHR(os.stat(device).st_mode)


def test_a_fifo_a_socket_or_a_link_to_one_is_refused_and_left_as_it_is(tmp_path, fifo):
    link = tmp_path / "link.csv"
    link.symlink_to(fifo)
    sock_path = tmp_path / "s.sock"
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(sock_path))
    try:
        for path, what in ((fifo, "a FIFO"), (link, "a FIFO (through the link"), (sock_path, "a socket")):
            with pytest.raises(EquiscaleError, match=r"is " + what.replace("(", r"\(")) as caught:
                check_output_file(path)
            assert len(str(caught.value).splitlines()) == 1
            with pytest.raises(EquiscaleError, match="not a regular file"):
                write_text(path, "x")                    # checked again where it writes
    finally:
        server.close()
    assert stat.S_ISFIFO(os.stat(fifo).st_mode) and link.is_symlink() and stat.S_ISSOCK(os.stat(sock_path).st_mode)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link.csv", "pipe.csv", "s.sock"]   # no temporary


def test_export_out_to_a_fifo_exits_2_in_one_line_and_leaves_it(runs_csv, tmp_path, fifo, capsys):
    link = tmp_path / "table.csv"
    link.symlink_to(fifo)
    for out in (fifo, link):
        code, err = _export(runs_csv, out, capsys)
        assert code == 2 and len(err.splitlines()) == 1 and "not a regular file" in err, err
    assert stat.S_ISFIFO(os.stat(fifo).st_mode) and link.is_symlink()


# ------------------------------------------------------------------------------------------ symbolic links

def test_export_out_through_a_symbolic_link_writes_its_target_and_keeps_the_link(runs_csv, tmp_path, capsys):
    (tmp_path / "real").mkdir()
    target = tmp_path / "real" / "alloc.csv"
    target.write_text("old\n")
    os.chmod(target, 0o640)
    link = tmp_path / "alloc.csv"
    link.symlink_to(os.path.relpath(target, tmp_path))       # relative, as `ln -s real/alloc.csv` makes it
    code, err = _export(runs_csv, link, capsys)
    assert code == 0, err
    assert link.is_symlink() and os.readlink(link) == os.path.join("real", "alloc.csv")
    assert target.read_text().startswith("family,budget,") and _mode(target) == 0o640   # the CSV table
    assert sorted(p.name for p in (tmp_path / "real").iterdir()) == ["alloc.csv"]   # staged beside the target


def test_a_chain_of_links_and_a_dangling_link_are_written_through(tmp_path):
    target = tmp_path / "t.csv"
    (tmp_path / "a").symlink_to(tmp_path / "b")
    (tmp_path / "b").symlink_to(target)                      # dangling: the target does not exist yet
    write_text(tmp_path / "a", "one\n")
    assert (tmp_path / "a").is_symlink() and (tmp_path / "b").is_symlink() and target.read_text() == "one\n"
    write_text(tmp_path / "a", "two\n")
    assert target.read_text() == "two\n" and sorted(p.name for p in tmp_path.iterdir()) == ["a", "b", "t.csv"]


# ------------------------------------------------------------------------------------------------- modes

@pytest.mark.parametrize("mask, expected", [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_a_new_file_gets_the_mode_of_the_umask(tmp_path, umask, mask, expected):
    umask(mask)
    write_text(tmp_path / "new.csv", "x\n")
    write_files(tmp_path, {"report.md": b"x", "figures/f.png": b"y"})              # into an existing folder
    write_files(tmp_path / "fresh", {"report.md": b"x"})                           # a new folder
    for path in ("new.csv", "report.md", "figures/f.png", "fresh/report.md"):
        assert _mode(tmp_path / path) == expected, path


def test_a_replaced_file_keeps_its_mode(tmp_path, umask):
    umask(0o022)
    for name, mode in (("private.csv", 0o600), ("shared.csv", 0o664)):
        (tmp_path / name).write_text("old")
        os.chmod(tmp_path / name, mode)
        write_text(tmp_path / name, "new")
        assert (tmp_path / name).read_text() == "new" and _mode(tmp_path / name) == mode
    (tmp_path / "report.md").write_text("old")
    os.chmod(tmp_path / "report.md", 0o640)
    write_files(tmp_path, {"report.md": b"new"})
    assert _mode(tmp_path / "report.md") == 0o640


def test_export_out_of_a_new_file_honours_the_umask(runs_csv, tmp_path, umask, capsys):
    umask(0o022)
    code, err = _export(runs_csv, tmp_path / "alloc.csv", capsys)
    assert code == 0, err
    assert _mode(tmp_path / "alloc.csv") == 0o644                               # was 0600 whatever the umask


# ----------------------------------------------------------------------------------------- failed writes

def _full_after(monkeypatch, nbytes: int) -> None:
    """os.write writes `nbytes` then fails as a full device does (ENOSPC)."""
    real = os.write
    left = [nbytes]

    def write(fd, data):
        if left[0] <= 0:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        n = real(fd, bytes(data[: left[0]]))
        left[0] -= n
        return n

    monkeypatch.setattr(output.os, "write", write)


def test_a_full_device_is_one_line_and_leaves_no_partial_file(tmp_path, monkeypatch):
    (tmp_path / "old.csv").write_text("before")
    _full_after(monkeypatch, 3)
    for name in ("old.csv", "new.csv"):
        with pytest.raises(EquiscaleError, match="No space left on device") as caught:
            write_text(tmp_path / name, "a longer table than three bytes\n")
        assert len(str(caught.value).splitlines()) == 1
    with pytest.raises(EquiscaleError, match="No space left on device"):
        write_files(tmp_path, {"old.csv": b"after", "report.md": b"x" * 10})
    monkeypatch.undo()
    assert (tmp_path / "old.csv").read_text() == "before"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["old.csv"]           # no temporary, no new file


def test_a_failed_flush_to_the_device_leaves_no_partial_file(tmp_path, monkeypatch):
    def no_space(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(output.os, "fsync", no_space)                       # delayed allocation: fails at flush
    with pytest.raises(EquiscaleError, match="No space left on device"):
        write_text(tmp_path / "new.csv", "x\n")
    assert list(tmp_path.iterdir()) == []


def test_export_on_a_full_device_exits_2_in_one_line_and_leaves_the_earlier_file(runs_csv, tmp_path, monkeypatch,
                                                                                  capsys):
    out = tmp_path / "alloc.csv"
    out.write_text("earlier\n")
    _full_after(monkeypatch, 10)
    code, err = _export(runs_csv, out, capsys)
    monkeypatch.undo()
    assert code == 2 and len(err.splitlines()) == 1 and "No space left on device" in err and str(out) in err
    assert out.read_text() == "earlier\n" and sorted(p.name for p in tmp_path.iterdir()) == ["alloc.csv"]


def test_the_report_writes_through_links_and_refuses_a_fifo_before_replacing_anything(tmp_path, fifo):
    out = tmp_path / "report"
    out.mkdir()
    (tmp_path / "kept.md").write_text("old")
    (out / "report.md").symlink_to(tmp_path / "kept.md")
    write_files(out, {"report.md": b"new", "figures/a.png": b"png"})
    assert (out / "report.md").is_symlink() and (tmp_path / "kept.md").read_text() == "new"
    (out / "report.html").symlink_to(fifo)
    with pytest.raises(EquiscaleError, match="not a regular file"):
        write_files(out, {"report.md": b"newer", "report.html": b"<html>"})
    assert (tmp_path / "kept.md").read_text() == "new" and stat.S_ISFIFO(os.stat(fifo).st_mode)
