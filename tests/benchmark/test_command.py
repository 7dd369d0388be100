"""`equiscale data` through study.cli.main and a subprocess: output, cache reuse, one-line errors."""

import subprocess
import sys

import pytest

from study.cli import main

ARGS = ["--scenes", "30", "--bodies", "2", "--seed", "1", "--horizon", "0.1"]


def test_generates_then_loads_from_cache(tmp_path, capsys):
    assert main(["data", *ARGS, "--cache-dir", str(tmp_path)]) == 0
    out, err = capsys.readouterr()
    assert "generated" in out and str(tmp_path) in out and "scenes             30" in out
    assert "with contacts" in out and "mean displacement" in out
    assert "simulating" in err   # the progress bar goes to stderr
    assert main(["data", *ARGS, "--cache-dir", str(tmp_path)]) == 0
    again, err = capsys.readouterr()
    assert "loaded from cache" in again and "simulating" not in err
    stats = lambda text: [line for line in text.splitlines() if "contacts" in line or "displacement" in line]
    assert stats(out) == stats(again)


def _corrupted_cache(tmp_path):
    assert main(["data", *ARGS, "--cache-dir", str(tmp_path)]) == 0
    (path,) = (tmp_path / "benchmark").glob("*.npz")
    path.write_bytes(path.read_bytes()[:100])
    return tmp_path


@pytest.mark.parametrize("extra, needle", [
    (["--bodies", "0"], "bodies"), (["--scenes", "0"], "scenes"), (["--scenes", "-4"], "scenes"),
    (["--horizon", "-1"], "horizon"), (["--threads", "0"], "threads"), (["--scenes", "many"], "scenes"),
    (["--cache-dir", "FILE/sub"], "not writable"), (["--cache-dir", "CORRUPT"], "corrupted"),
    (["--scenes", str(10**10)], "does not fit in memory"),
])
def test_bad_input_is_one_line_exit_2(tmp_path, capsys, extra, needle):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    if "CORRUPT" in extra:
        extra = ["--cache-dir", str(_corrupted_cache(tmp_path / "c"))]
        capsys.readouterr()
    extra = [str(blocker / "sub") if e == "FILE/sub" else e for e in extra]
    args = ["data", *ARGS, *extra] if "--cache-dir" in extra else ["data", *ARGS, "--cache-dir", str(tmp_path), *extra]
    try:
        code = main(args)
    except SystemExit as exc:   # argparse type errors exit from inside parse_args
        code = exc.code
    out, err = capsys.readouterr()
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0] and "Traceback" not in err, err


def test_subprocess_corrupted_cache(tmp_path):
    cache = _corrupted_cache(tmp_path / "c")
    corrupt = subprocess.run([sys.executable, "-m", "study.cli", "data", *ARGS, "--cache-dir", str(cache)],
                             capture_output=True, text=True, timeout=120)
    assert corrupt.returncode == 2 and "Traceback" not in corrupt.stderr
    assert len(corrupt.stderr.strip().splitlines()) == 1 and "corrupted" in corrupt.stderr
