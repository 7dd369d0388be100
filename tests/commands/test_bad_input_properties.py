"""Property-based bad input (issue 12): study files and CLI arguments of run/status/dashboard/data.

Every generated case is invalid (at least one bad field). Each must make `main([...])` return 2, print
exactly one non-empty line on stderr naming the problem and no traceback, leave a storage that existed
before byte-identical (bytes and mtime), and create no file. The expensive paths (training, the
simulation, the dashboard server) are stubbed to fail the test if a case ever reaches them.
"""

from __future__ import annotations

import contextlib
import io
import math
import os
import socket
import sqlite3
import traceback
from pathlib import Path

import optuna
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from study.cli import main

SETTINGS = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow])


# --- the world every case runs in ------------------------------------------------------------------------

class Reached(AssertionError):
    """A case that should have been refused reached an expensive path."""


def _reached(what):
    def stub(*args, **kwargs):
        raise Reached(f"{what} reached: the case was accepted as valid")
    return stub


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """An existing SQLite storage (one study, one COMPLETE trial), a clean working directory, stubs."""
    root = tmp_path_factory.mktemp("bad-input")
    db = root / "kept.db"
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(storage=f"sqlite:///{db}", study_name="transformer/1e+10")
    study.set_user_attr("family", "transformer")
    study.optimize(lambda trial: trial.suggest_float("x", 0, 1), n_trials=1)
    cwd = root / "cwd"
    cwd.mkdir()
    (root / "a-directory").mkdir()
    (root / "cache").mkdir()  # the dataset cache of `equiscale data` cases: empty, and nothing may land there
    (root / "not-a-db.db").write_text("not sqlite")
    foreign = root / "foreign.db"
    connection = sqlite3.connect(foreign)
    connection.execute("CREATE TABLE notes (text TEXT)")
    connection.commit()
    connection.close()
    empty = root / "empty.db"
    sqlite3.connect(empty).close()  # an SQLite file of size 0
    with pytest.MonkeyPatch.context() as mp:
        import optuna_dashboard

        import study.benchmark.dataset
        import study.commands.run
        import study.estimate
        import study.pipeline

        mp.setattr(study.commands.run, "run_study", _reached("run_study"))
        mp.setattr(study.pipeline, "run_study", _reached("run_study"))
        mp.setattr(study.benchmark.dataset, "generate", _reached("the simulation"))
        mp.setattr(optuna_dashboard, "run_server", _reached("the dashboard server"))
        mp.setattr(study.estimate, "matmul_rate", lambda **kwargs: 4e10)  # the estimate without timing matmuls
        mp.chdir(cwd)  # a relative SQLite path would land here (and is caught: nothing may be created)
        yield {"root": root, "cache": root / "cache", "db": db, "empty": empty, "url": f"sqlite:///{db}", "cwd": cwd, "foreign": foreign,
               "closed_port": _closed_port()}


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _snapshot(world):
    files = {p: (p.read_bytes(), os.stat(p).st_mtime_ns) for p in (world["db"], world["foreign"], world["empty"])}
    return files, *(sorted(os.listdir(world[name])) for name in ("root", "cwd", "cache"))


def check_refused(world, argv, needles):
    """`main(argv)` returns 2 with one line on stderr naming one of `needles`; nothing stored changes."""
    before = _snapshot(world)
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            code = main(argv)
        except Reached:
            raise
        except BaseException as exc:  # noqa: BLE001 - SystemExit and tracebacks are failures too
            raise AssertionError(f"main({argv!r}) raised instead of returning 2:\n{traceback.format_exc()}") from exc
    text = err.getvalue()
    lines = text.strip().splitlines()
    assert code == 2, (argv, code, text)
    assert "Traceback" not in text, text
    assert len(lines) == 1 and lines[0].strip(), f"not one line: {text!r}"
    assert lines[0].startswith(f"equiscale {argv[0]}: error: "), lines[0]
    assert any(n.lower() in lines[0].lower() for n in needles), f"{lines[0]!r} names none of {needles}"
    assert _snapshot(world) == before, "a storage or directory changed"


# --- TOML text -------------------------------------------------------------------------------------------

def _toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return '"' + "".join(c if c.isprintable() and c not in '"\\' else f"\\u{ord(c):04x}" if ord(c) < 0x10000
                             else f"\\U{ord(c):08x}" for c in value) + '"'
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in value.items()) + "}"
    raise TypeError(value)


def _toml_key(key: str) -> str:
    return key if key.replace("_", "").replace("-", "").isalnum() and key.isascii() else _toml_value(key)


def to_toml(doc: dict) -> str:
    lines = [f"{_toml_key(k)} = {_toml_value(v)}" for k, v in doc.items() if not isinstance(v, dict) or k not in
             SECTIONS]
    for name in SECTIONS:
        if name in doc and isinstance(doc[name], dict):
            lines.append(f"\n[{name}]")
            lines += [f"{_toml_key(k)} = {_toml_value(v)}" for k, v in doc[name].items()]
    return "\n".join(lines) + "\n"


# A valid, cheap study (the tests never run it: every case below breaks at least one field of it).
VALID = {"families": ["transformer"], "budgets": [3e10], "trials": 2, "seed": 0, "sampler": "grid",
         "data": {"scenes": 256, "bodies": 2, "seed": 0, "val_fraction": 0.1, "test_fraction": 0.1},
         "training": {"batch_size": 8, "min_steps": 300, "max_steps": 12000, "lr_min": 1e-3, "lr_max": 1e-2,
                      "warmup_fraction": 0.05, "weight_decay": 0.01, "grad_clip": 1.0, "evals": 3,
                      "val_samples": 64, "grid_depth": 2, "batch_sizes": [8],
                      "lr_ranges": {"transformer": [1e-3, 4e-3]}},
         "resources": {"cpus_per_trial": 1.0, "gpus_per_trial": 0.0, "max_concurrent": 1, "max_failures": 1}}
SECTIONS = ("data", "training", "resources")

NAN, INF = float("nan"), float("inf")
HUGE_INT = 10**40          # beyond 64 bits: tomllib still parses it
TOO_BIG_FOR_FLOAT = 10**400

texts = st.text(max_size=12)
not_int = st.one_of(texts, st.booleans(), st.floats(allow_nan=True).filter(lambda x: x != int(x) if math.isfinite(x)
                                                                             else True),
                    st.just([1]), st.just({"a": 1}), st.just(2.0))
not_number = st.one_of(texts, st.booleans(), st.just([1.0]), st.just({"a": 1.0}))
not_str = st.one_of(st.integers(), st.floats(), st.booleans(), st.just(["transformer"]), st.just({"a": "b"}))
nonfinite = st.sampled_from([NAN, INF, -INF])


def nonpositive_int(extreme=True):
    return st.one_of(st.integers(max_value=0), st.just(-HUGE_INT)) if extreme else st.integers(max_value=0)


def positive_float_bad():
    """Floats that no 'finite number > 0' setting accepts."""
    return st.one_of(nonfinite, st.floats(max_value=0.0, allow_nan=False), st.just(TOO_BIG_FOR_FLOAT),
                     st.just(-TOO_BIG_FOR_FLOAT), not_number)


# (section or None, key) -> strategy of values that make the study invalid
BAD: dict[tuple[str | None, str], st.SearchStrategy] = {
    (None, "families"): st.one_of(not_str.filter(lambda v: not isinstance(v, list)), st.just([]),
                                  st.lists(not_str, min_size=1, max_size=2),
                                  st.lists(texts.filter(lambda s: s not in ("transformer", "transformer-aug", "gatr")),
                                           min_size=1, max_size=2),
                                  st.just(["transformer", "transformer"])),
    (None, "budgets"): st.one_of(st.just([]), st.just(3e10), not_number.map(lambda v: [v]),
                                 st.lists(st.one_of(nonfinite, st.floats(max_value=1e6), st.floats(min_value=1e25),
                                                    st.just(TOO_BIG_FOR_FLOAT), st.just(-HUGE_INT)),
                                          min_size=1, max_size=3),
                                 st.just([3e10, 3.1e10])),
    (None, "trials"): st.one_of(nonpositive_int(), not_int, st.integers(min_value=10**4)),  # grid: too few sizes
    (None, "storage"): not_str,
    (None, "seed"): not_int,
    (None, "sampler"): st.one_of(not_str, texts.filter(lambda s: s not in ("tpe", "grid"))),
    ("data", "scenes"): st.one_of(nonpositive_int(), not_int, st.integers(min_value=10**13)),
    ("data", "bodies"): st.one_of(nonpositive_int(), not_int, st.integers(min_value=65)),
    ("data", "seed"): st.one_of(st.integers(max_value=-1), st.integers(min_value=2**63), not_int),
    ("data", "val_fraction"): st.one_of(nonfinite, st.floats(max_value=-1e-9), st.floats(min_value=1.0),
                                        not_number),
    ("data", "test_fraction"): st.one_of(nonfinite, st.floats(max_value=-1e-9), st.floats(min_value=1.0),
                                         not_number),
    ("training", "batch_size"): st.one_of(nonpositive_int(), not_int),
    ("training", "min_steps"): st.one_of(st.integers(max_value=99), not_int),
    ("training", "max_steps"): st.one_of(st.integers(max_value=299), not_int),
    ("training", "lr_min"): st.one_of(positive_float_bad(), st.floats(min_value=1.01e-2, allow_infinity=False)),
    ("training", "lr_max"): st.one_of(positive_float_bad(), st.floats(min_value=1e-300, max_value=9.9e-4)),
    ("training", "warmup_fraction"): st.one_of(nonfinite, st.floats(max_value=-1e-9), st.floats(min_value=1.0),
                                               not_number, st.just(TOO_BIG_FOR_FLOAT)),
    ("training", "weight_decay"): st.one_of(nonfinite, st.floats(max_value=-1e-9), not_number,
                                            st.just(TOO_BIG_FOR_FLOAT)),
    ("training", "grad_clip"): positive_float_bad(),
    ("training", "evals"): st.one_of(nonpositive_int(), not_int),
    ("training", "val_samples"): st.one_of(st.integers(max_value=-1), not_int),
    ("training", "grid_depth"): st.one_of(nonpositive_int(), not_int, st.integers(min_value=100)),
    ("training", "batch_sizes"): st.one_of(st.just(8), st.just({"a": 8}), st.lists(st.integers(1, 64), min_size=2,
                                                                                    max_size=4),
                                           st.just([]).map(lambda _: [8, 8]), st.lists(nonpositive_int(), min_size=1,
                                                                                       max_size=1),
                                           not_int.map(lambda v: [v])),
    ("training", "lr_ranges"): st.one_of(
        st.just([1e-3, 4e-3]), st.just(1.0),
        not_number.map(lambda v: {"transformer": v}),
        st.lists(st.floats(1e-4, 1e-2), max_size=4).filter(lambda v: len(v) != 2).map(lambda v: {"transformer": v}),
        st.tuples(positive_float_bad(), st.just(4e-3)).map(lambda v: {"transformer": list(v)}),
        st.tuples(st.just(1e-3), positive_float_bad()).map(lambda v: {"transformer": list(v)}),
        st.just({"transformer": [4e-3, 1e-3]}),
        texts.filter(lambda s: s not in ("transformer", "transformer-aug", "gatr")).map(lambda f: {f: [1e-3, 4e-3]})),
    ("resources", "cpus_per_trial"): st.one_of(positive_float_bad(), st.floats(0, 9.9e-5)),  # Ray's unit: 1e-4
    ("resources", "gpus_per_trial"): st.one_of(nonfinite, st.floats(max_value=-1e-9), not_number,
                                               st.just(TOO_BIG_FOR_FLOAT), st.floats(1e-300, 9.9e-5)),
    ("resources", "max_concurrent"): st.one_of(st.integers(max_value=-1), not_int),
    ("resources", "max_failures"): st.one_of(st.integers(max_value=-1), not_int),
    ("resources", "address"): st.one_of(not_str, st.just("127.0.0.1:CLOSED"), st.just("ray://127.0.0.1:CLOSED"),
                                        st.just("127.0.0.1:0"), st.just("127.0.0.1:65536"),
                                        st.just("127.0.0.1:99999"), st.just(f"127.0.0.1:{HUGE_INT}"),
                                        st.just("127.0.0.1:-1"), st.just(""), st.just("127.0.0.1\x00:6379"),
                                        texts.filter(lambda s: ":" not in s and s not in ("auto", "local"))),
}

# what the one line may say for each key (any one of them)
NEEDLES = {key: [key, key.replace("_", "-")] for _, key in BAD}
NEEDLES.update({
    "families": ["famil"], "budgets": ["budget"], "trials": ["trials", "fewer than"],
    "scenes": ["scenes"], "val_fraction": ["val_fraction", "training scenes"],
    "test_fraction": ["test_fraction", "training scenes"], "bodies": ["bodies", "scenes"],
    "lr_min": ["lr_min"], "lr_max": ["lr_max", "lr_min"], "min_steps": ["min_steps"],
    "max_steps": ["max_steps"], "grid_depth": ["grid_depth", "depth"],
    "batch_sizes": ["batch_sizes"], "lr_ranges": ["lr_ranges", "unknown model family"],
    "address": ["address"], "storage": ["storage"],
})


@st.composite
def bad_studies(draw):
    """(document, needles): the valid study with 1-3 of its fields broken, unknown keys or sections."""
    doc = {k: (dict(v) if isinstance(v, dict) else v) for k, v in VALID.items()}
    needles = []
    kind = draw(st.sampled_from(["field"] * 6 + ["unknown key", "unknown section key", "section", "missing"]))
    if kind == "unknown key":
        key = draw(st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=8)
                   .filter(lambda k: k not in VALID and k not in SECTIONS and not k.isspace()))
        doc[key] = draw(st.one_of(st.integers(), texts))
        needles.append("unknown key")
    elif kind == "unknown section key":
        section = draw(st.sampled_from(SECTIONS))
        key = draw(st.sampled_from(["horizon", "lr", "cpus", "x"]))
        doc[section][key] = 1
        needles.append("unknown key")
    elif kind == "section":
        section = draw(st.sampled_from(SECTIONS))
        doc[section] = draw(st.one_of(st.integers(), texts, st.just([1])))
        needles.append(f"[{section}]")
    elif kind == "missing":
        key = draw(st.sampled_from(["families", "budgets"]))
        del doc[key]
        needles.append(key)
    for section, key in draw(st.lists(st.sampled_from(sorted(BAD, key=str)), min_size=1 if kind == "field" else 0,
                                      max_size=3, unique=True)):
        value = draw(BAD[section, key])
        if isinstance(value, str):
            value = value.replace("CLOSED", str(_closed_port()))
        if section is None:
            doc[key] = value
        elif isinstance(doc.get(section), dict):
            doc[section][key] = value
        else:
            continue
        needles += NEEDLES[key]
    return doc, needles


def _write(world, name: str, data: bytes) -> Path:
    path = world["root"] / "files" / name
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(data)
    return path


@settings(max_examples=150, **SETTINGS)
@given(case=bad_studies())
def test_bad_study_files_exit_2_with_one_line(world, case):
    doc, needles = case
    path = _write(world, "study.toml", to_toml(doc).encode())
    check_refused(world, ["run", str(path), "--storage", world["url"]], needles)


@settings(max_examples=40, **SETTINGS)
@given(text=st.text(max_size=200))
def test_arbitrary_text_as_a_study_file(world, text):
    path = _write(world, "text.toml", text.encode("utf-8", "surrogatepass"))
    check_refused(world, ["run", str(path), "--storage", world["url"]],
                  ["TOML", "UTF-8", "unknown key", "missing key", "must be", "famil", "budget"])


@settings(max_examples=30, **SETTINGS)
@given(prefix=st.integers(0, 40), junk=st.sampled_from([b"\xff", b"\xfe\xfe", b"\xc3\x28", b"\xed\xa0\x80",
                                                          b"\xe9", b"\x80abc", b"\xf8\x88\x80\x80\x80"]))
def test_non_utf8_study_files(world, prefix, junk):
    text = to_toml(VALID).encode()
    data = text[:prefix] + junk + text[prefix:]
    path = _write(world, "bytes.toml", data)
    check_refused(world, ["run", str(path), "--storage", world["url"]], ["UTF-8"])


@pytest.mark.parametrize("which", ["directory", "missing", "nul", "unreadable"])
def test_unreadable_study_files(world, which):
    if which == "unreadable":
        if os.geteuid() == 0:
            pytest.skip("root reads a chmod 000 file: the directory case covers unreadable paths")
        path = _write(world, "locked.toml", to_toml(VALID).encode())
        path.chmod(0)
    else:
        path = {"directory": str(world["root"] / "a-directory"), "missing": str(world["root"] / "absent.toml"),
                "nul": str(world["root"] / "a\x00b.toml")}[which]
    try:
        check_refused(world, ["run", str(path), "--storage", world["url"]], ["config", "read"])
    finally:
        if which == "unreadable":
            Path(path).chmod(0o600)


def garbage_urls(world_root: Path):
    root = str(world_root)
    return st.one_of(
        texts.filter(lambda s: not s.startswith("sqlite")),
        st.sampled_from(["sqlite://", "sqlite:///:memory:", "sqlite:///file::memory:?cache=shared", "://", ":",
                         "foo://bar", "sqlite+nodriver:///x.db", "postgresql://u@127.0.0.1:CLOSED/db",
                         "postgresql://u@127.0.0.1:99999999/db", "mysql://u@127.0.0.1:CLOSED/db",
                         f"sqlite:///{root}/no/such/dir/x.db", f"sqlite:///{root}/a-directory",
                         f"sqlite:///{root}/not-a-db.db", f"sqlite:///{root}/a\x00b.db",
                         f"sqlite:///{root}/files\x00/x.db", "sqlite:///\x00", "sqlite:////proc/no/x.db",
                         "sqlite:////dev/null/x.db", "sqlite:///?mode=ro"]),
        st.text(min_size=1, max_size=10).map(lambda s: f"sqlite:///{root}/no/such/{s}"),
    ).map(lambda u: u.replace("CLOSED", str(_closed_port())))


@settings(max_examples=60, **SETTINGS)
@given(data=st.data(), command=st.sampled_from(["run", "status", "dashboard"]))
def test_garbage_storage_urls(world, data, command):
    url = data.draw(garbage_urls(world["root"]), label="url")
    check_refused(world, [command, "--storage", url], ["storage", "url"])


@pytest.mark.parametrize("command", ["status", "dashboard"])
@pytest.mark.parametrize("which", ["empty", "foreign", "missing"])
def test_reading_commands_refuse_a_storage_without_studies(world, command, which):
    url = f"sqlite:///{world['root'] / 'absent.db'}" if which == "missing" else f"sqlite:///{world[which]}"
    check_refused(world, [command, "--storage", url], ["storage"])


@settings(max_examples=10, **SETTINGS)
@given(trials=st.integers(min_value=10**6, max_value=HUGE_INT), yes_flag=st.sampled_from([[], ["--quiet"]]))
def test_a_run_over_the_estimate_threshold_is_refused_in_one_line(world, trials, yes_flag):
    path = _write(world, "big.toml", to_toml(dict(VALID, sampler="tpe", trials=trials)).encode())
    check_refused(world, ["run", str(path), "--storage", world["url"], *yes_flag], ["add --yes"])


@settings(max_examples=20, **SETTINGS)
@given(data=st.data())
def test_garbage_storage_url_in_a_study_file(world, data):
    url = data.draw(garbage_urls(world["root"]), label="url")
    path = _write(world, "storage.toml", to_toml(dict(VALID, storage=url)).encode())
    check_refused(world, ["run", str(path)], ["storage", "url"])


NUMBER_TEXT = st.one_of(st.sampled_from(["nan", "NaN", "-nan", "inf", "-inf", "infinity", "1e400", "-1e400",
                                         "", " ", "0x10", "1,5", "1e", "--1", "\x00", "١"]), texts)


def _int(text: str) -> int:
    """The integer argparse would read from `text` (0 when it reads none)."""
    try:
        return int(text)
    except ValueError:
        return 0


@st.composite
def bad_run_arguments(draw, closed_port):
    """(argv tail, needles): 1-2 bad run flags on top of a valid study."""
    options = {
        "--budget": st.one_of(NUMBER_TEXT, st.sampled_from(["0", "-3e10", "1e5", "1e30", "-0"]),
                              st.floats(max_value=0.0).map(repr)),
        "--trials": st.one_of(NUMBER_TEXT, st.integers(max_value=0).map(str), st.just("100000"),
                              st.just(str(HUGE_INT)), st.just("2.5")),
        "--cpus-per-trial": st.one_of(NUMBER_TEXT, st.floats(max_value=9.9e-5).map(repr)),
        "--gpus-per-trial": st.one_of(NUMBER_TEXT, st.floats(max_value=-1e-9).map(repr),
                                      st.floats(1e-300, 9.9e-5).map(repr)),
        "--family": st.one_of(texts.filter(lambda s: s not in ("transformer", "transformer-aug", "gatr")),
                              st.sampled_from(["Transformer", "gatr ", "mlp"])),
        "--address": st.one_of(st.sampled_from([f"127.0.0.1:{closed_port}", f"ray://127.0.0.1:{closed_port}",
                                                "127.0.0.1:0", "127.0.0.1:65536", f"127.0.0.1:{HUGE_INT}",
                                                "127.0.0.1:", ":6379", "127.0.0.1:port", "\x00:1", "", " "]),
                               texts.filter(lambda s: ":" not in s and s not in ("auto", "local"))),
    }
    needles = {"--budget": ["budget"], "--trials": ["trials", "fewer than"],
               "--cpus-per-trial": ["cpus-per-trial"], "--gpus-per-trial": ["gpus-per-trial"],
               "--family": ["famil"], "--address": ["address"]}
    flags = draw(st.lists(st.sampled_from(sorted(options)), min_size=1, max_size=2, unique=True))
    argv, names = [], []
    for flag in flags:
        value = draw(options[flag])
        if flag in ("--cpus-per-trial", "--gpus-per-trial", "--budget", "--trials"):
            try:  # the string strategies may draw a valid number: keep only invalid ones
                if flag == "--trials" and 1 <= _int(value) < 10**4:
                    continue
                number = float(value)
                if flag != "--trials" and math.isfinite(number) and (
                        (flag == "--gpus-per-trial" and (number == 0 or number >= 1e-4))
                        or (flag == "--cpus-per-trial" and number >= 1e-4)
                        or (flag == "--budget" and 1e8 < number < 1e20)):
                    continue
            except ValueError:
                pass
        argv += [f"{flag}={value}"]
        names += needles[flag]
    if not argv:
        argv, names = ["--trials=0"], ["trials"]
    return argv, names


@settings(max_examples=80, **SETTINGS)
@given(data=st.data())
def test_bad_run_arguments(world, data):
    argv, needles = data.draw(bad_run_arguments(world["closed_port"]))
    path = _write(world, "valid.toml", to_toml(VALID).encode())
    check_refused(world, ["run", str(path), "--storage", world["url"], *argv],
                  needles + ["argument", "invalid", "not a number"])


@settings(max_examples=30, **SETTINGS)
@given(port=st.one_of(st.integers(max_value=0), st.integers(min_value=65536), st.just(HUGE_INT).map(str),
                      NUMBER_TEXT.filter(lambda text: not 0 < _int(text) < 65536)))
def test_bad_dashboard_ports(world, port):
    check_refused(world, ["dashboard", "--storage", world["url"], f"--port={port}"], ["port"])


@st.composite
def bad_data_arguments(draw):
    options = {
        "--scenes": st.one_of(NUMBER_TEXT, st.integers(max_value=0).map(str), st.just(str(10**13)),
                              st.just(str(HUGE_INT)), st.just("1.5")),
        "--bodies": st.one_of(NUMBER_TEXT, st.integers(max_value=0).map(str), st.integers(min_value=65).map(str)),
        "--horizon": st.one_of(NUMBER_TEXT.filter(lambda s: s.strip() not in ("١",)),
                               st.floats(max_value=0.0).map(repr), st.just("1e-9")),
        "--threads": st.one_of(NUMBER_TEXT, st.integers(max_value=0).map(str)),
        "--seed": st.one_of(st.integers(max_value=-1).map(str), st.just(str(2**64)), st.just("x")),
    }
    flags = draw(st.lists(st.sampled_from(sorted(options)), min_size=1, max_size=2, unique=True))
    argv, needles = [], ["argument", "invalid"]
    for flag in flags:
        value = draw(options[flag])
        try:
            number = float(value)
            ok = {"--scenes": lambda: 1 <= _int(value) < 10**7,
                  "--bodies": lambda: 1 <= _int(value) <= 64,
                  "--threads": lambda: _int(value) >= 1,
                  "--horizon": lambda: math.isfinite(number) and number > 0.001,
                  "--seed": lambda: False}[flag]()
            if ok:
                continue
        except ValueError:
            pass
        argv.append(f"{flag}={value}")
        needles.append(flag.lstrip("-"))
    if not argv:
        argv, needles = ["--threads=0"], ["threads"]
    return argv, needles


@settings(max_examples=60, **SETTINGS)
@given(case=bad_data_arguments())
def test_bad_data_arguments(world, case):
    argv, needles = case
    check_refused(world, ["data", "--cache-dir", str(world["root"] / "cache"), *argv], needles)
