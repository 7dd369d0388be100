"""The committed CPU results (docs/results/cpu/): complete storages, and a report that regenerates from them.

The report's numbers read straight from the storages (best losses per budget and per size) must come
back identical, every section and every claim's verdict the same; bootstrap intervals may move with
numerical libraries, so they are not compared digit by digit.
"""

from __future__ import annotations

import collections
import re
from pathlib import Path

import optuna
import pytest

from study.cli import main
from tests.scripts import load_benchmark
from study.config import load_config, resolve
from study.resume import remaining_trials

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "docs" / "results" / "cpu"
STUDIES = ROOT / "studies"
STORAGES = [f"sqlite:///{RESULTS / 'compute.db'}", f"sqlite:///{RESULTS / 'data.db'}"]


def _study_names(url: str) -> set[str]:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return {s.study_name for s in optuna.get_all_study_summaries(url, include_best_trial=False)}


EARLIER = [(f"cpu-confirm{k}.toml", f"sqlite:///{RESULTS.parent / f'cpu-confirm{k}' / 'compute.db'}", 15) for k in (2, 3)]


@pytest.mark.parametrize("study_file, url, studies",
                         [("cpu.toml", STORAGES[0], 15), ("data.toml", STORAGES[1], 36), *EARLIER])
def test_each_committed_storage_is_its_study_file_run_to_the_end(study_file, url, studies):
    """Every study of the study file is in its storage, and its sampler (the adaptive IsoFLOP refinement, the data
    study's lr grid; each decided from the stored trials) wants no more trials: `equiscale run` on it would train
    nothing. compute.db holds compute studies only, data.db data studies only. The earlier confirmation studies
    kept beside the committed one (`docs/results/cpu-confirm2/`, `cpu-confirm3/`) too."""
    run = resolve(load_config(STUDIES / study_file))
    left = remaining_trials(url, run)
    assert set(left) == _study_names(url) and len(left) == studies
    assert left == {name: 0 for name in left}
    assert all(name.startswith("data/") == (study_file == "data.toml") for name in left)


def _sections_verdicts_and_stored_tables(text: str) -> tuple[list[str], list[str], list[str]]:
    headings = re.findall(r"^#+ .*$", text, flags=re.M)
    verdicts = re.findall(r"^- \*\*Claim \d\*\* \(.*?\): \*\*(.*?)\*\*", text, flags=re.M)
    tables = []
    for caption in ("Best validation loss [MSE, m²] per budget", "Best validation loss [MSE, m²] per training-set size"):
        start = text.index(caption)
        block = text[start:].split("\n\n")[1]          # the table after the caption line
        tables.append(block)
    return headings, verdicts, tables


@pytest.mark.slow
def test_the_committed_report_regenerates_from_the_committed_storages(tmp_path, capsys):
    out = tmp_path / "report"
    committed = (RESULTS / "report" / "report.md").read_text(encoding="utf-8")
    argv = ["report", "--out", str(out)]
    for url in STORAGES:
        argv += ["--storage", url]
    argv += _robust_argv(committed)
    assert main(argv) == 0, capsys.readouterr().err
    fresh = (out / "report.md").read_text(encoding="utf-8")
    fresh = fresh.replace(str(RESULTS), "docs/results/cpu")       # the storages' paths as the README gives them
    assert _sections_verdicts_and_stored_tables(fresh) == _sections_verdicts_and_stored_tables(committed)
    assert len(_sections_verdicts_and_stored_tables(committed)[1]) == 3
    assert sorted(p.name for p in (out / "figures").iterdir()) == sorted(
        p.name for p in (RESULTS / "report" / "figures").iterdir())
    assert (out / "allocation.csv").read_text().splitlines()[0] == \
        (RESULTS / "report" / "allocation.csv").read_text().splitlines()[0]


def _robust_argv(report: str) -> list[str]:
    """`--isoflop-robust SCALE` when the report states that its parabolas were fitted with a Cauchy loss."""
    robust = re.search(r"by a Cauchy loss of scale (\S+) × the lowest loss", report)   # the rule it states
    return ["--isoflop-robust", robust.group(1)] if robust else []


def test_the_approach_2_diagnosis_draws_the_reports_resamples(monkeypatch, capsys):
    """benchmarks/isoflop_resamples.py redraws the report's Approach-2 resamples and fits each budget itself (with
    the report's parabola fit): on the committed study, a family the report calls not identified has as many
    resamples bracketing fewer than 3 budgets as the report's failed resamples (there every failure is one of
    those), and a family it identifies has at most 2.5% of them (a 95% interval can lose no more); and each budget
    is lost in as many resamples as the report's IsoFLOP section says (its own tally of the same resamples)."""
    report = (RESULTS / "report" / "report.md").read_text(encoding="utf-8")
    monkeypatch.setattr("sys.argv", ["isoflop_resamples.py", "--storage", STORAGES[0], *_robust_argv(report)])
    assert load_benchmark("isoflop_resamples").main() == 0
    out = capsys.readouterr().out
    counted = {family: int(n) for family, n in re.findall(r"^(\S+): .* fewer than 3 in (\d+) of 200$", out, flags=re.M)}
    for block in re.split(r"^(?=\S)", out, flags=re.M)[1:]:
        family = block.split(":")[0]
        lost = collections.Counter()
        for count, budget in re.findall(r"^ +(\d+)  (\S+)  ", block, flags=re.M):
            lost[budget] += int(count)
        stated = re.search(rf"^- {re.escape(family)}: .*; budgets lost: (.*)$", report, flags=re.M).group(1)
        assert dict(lost) == {b: int(n) for b, n in re.findall(r"(\S+) in (\d+) \(", stated)}, (family, stated)
    rows = dict(re.findall(r"^\| (\S+) \| Approach 2 \(IsoFLOP\) \| (.*)$", report, flags=re.M))
    assert set(counted) == set(rows) == set(load_config(STUDIES / "cpu.toml").families)
    for family, row in rows.items():
        failed = re.search(r"not identified: interval unbounded: (\d+) of 200", row)
        if failed:
            assert counted[family] == int(failed.group(1)), (family, counted[family], row)
        else:
            assert re.match(r"\d\S* \[\S+, \S+\]", row) and counted[family] <= 5, (family, counted[family], row)
