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


STUDY = """
families = ["transformer"]
budgets = [1e10]
[data]
scenes = 40
bodies = 2
seed = 3
val_fraction = 0.2
test_fraction = 0.15
"""


def test_a_study_file_gives_the_dataset_its_run_trains_on(tmp_path, capsys):
    from study.benchmark import load_dataset
    from study.config import load_config

    path = tmp_path / "study.toml"
    path.write_text(STUDY)
    assert main(["data", str(path), "--cache-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "generated" in out and "scenes             40 (train 26, val 8, test 6)" in out   # 40 - 8 - 6
    assert "bodies x markers   2 x" in out
    # what `equiscale run` loads for this file (study.pipeline) is now a cache hit
    dataset = load_dataset(load_config(path).data.benchmark(), cache_dir=tmp_path)
    assert dataset.from_cache and len(dataset.val) == 8 and len(dataset.test) == 6
    # a flag overrides one setting of the file: another dataset, the file's fractions kept
    assert main(["data", str(path), "--scenes", "20", "--cache-dir", str(tmp_path)]) == 0
    assert "scenes             20 (train 13, val 4, test 3)" in capsys.readouterr().out


def test_without_a_study_file_it_is_the_default_studys_dataset(tmp_path, capsys, monkeypatch):
    import study.commands.data as command
    from study.config import load_config

    seen = []

    def record_and_stop(config, **kwargs):                        # stop before simulating 65,536 scenes
        seen.append(config)
        raise SystemExit(0)

    monkeypatch.setattr(command, "load_dataset", record_and_stop)
    with pytest.raises(SystemExit):
        main(["data", "--cache-dir", str(tmp_path)])
    default = load_config(None).data
    assert (seen[0].scenes, seen[0].val_fraction, seen[0].test_fraction) == (
        default.scenes, default.val_fraction, default.test_fraction)


def test_a_bad_study_file_is_one_line_exit_2(tmp_path, capsys):
    path = tmp_path / "bad.toml"
    path.write_text(STUDY.replace("val_fraction = 0.2", "val_fraction = 2"))
    assert main(["data", str(path), "--cache-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "val_fraction" in err[0]
    assert not (tmp_path / "benchmark").exists() or not any((tmp_path / "benchmark").iterdir())
