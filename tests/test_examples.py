"""The worked examples outside the package: a user's family (examples/deepsets, installed as its own package with
entry points) and a user's task (examples/toy_task, found by its import path in the study file) run as tiny
studies through `equiscale run`, land in the storage with the same attributes as the built-in families' trials,
and `fit`/`report` work on them. Bad plugins are one line, exit 2, nothing stored."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import optuna
import pytest
import torch
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"


@pytest.fixture(scope="module")
def deepsets_path(tmp_path_factory) -> Path:
    """examples/deepsets installed as its own package (its entry points included) into a private folder."""
    target = tmp_path_factory.mktemp("deepsets-install")
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                    "--target", str(target), str(EXAMPLES / "deepsets")], check=True, timeout=300)
    return target


def _equiscale(*args: str, cwd: Path, pythonpath: list[Path] = (), timeout: float = 600):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(map(str, [*pythonpath, ROOT])),
           "EQUISCALE_CACHE_DIR": str(cwd / "cache")}
    return subprocess.run([sys.executable, "-m", "study.cli", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout)


def _stored(url: str) -> dict[str, tuple[dict, list]]:
    """study name -> (study user attributes, COMPLETE trials)."""
    out = {}
    for summary in optuna.get_all_study_summaries(url, include_best_trial=False):
        trials = optuna.load_study(study_name=summary.study_name, storage=url).get_trials(
            states=(optuna.trial.TrialState.COMPLETE,))
        out[summary.study_name] = (summary.user_attrs, trials)
    return out


def _check_same_attributes(stored: dict, plugin_family: str, builtin_family: str) -> None:
    """Every study reached its target, and the plugin's studies and trials carry the built-in ones' attributes."""
    for name, (attrs, trials) in stored.items():
        assert len(trials) == attrs["target_trials"], name
    plugin = [v for n, v in stored.items() if n.startswith(plugin_family + "/")]
    builtin = [v for n, v in stored.items() if n.startswith(builtin_family + "/")]
    assert plugin and builtin
    assert {frozenset(a) for a, _ in plugin} == {frozenset(a) for a, _ in builtin}
    keys = {frozenset(t.user_attrs) for _, trials in plugin + builtin for t in trials}
    assert len(keys) == 1, keys


@pytest.mark.slow
def test_a_family_from_its_own_installed_package_runs_fits_and_reports(tmp_path, deepsets_path):
    url = f"sqlite:///{tmp_path / 'ds.db'}"
    run = _equiscale("run", str(EXAMPLES / "deepsets.toml"), "--storage", url, "--quiet", cwd=tmp_path,
                     pythonpath=[deepsets_path])
    assert run.returncode == 0, run.stderr
    stored = _stored(url)
    _check_same_attributes(stored, "deepsets", "gatr")
    attrs, trials = stored["deepsets/4e+09"]
    assert attrs["claims"] == {"equivariant": "gatr", "baselines": ["deepsets"], "augmented": None}
    assert all(t.user_attrs["shape"].keys() == {"width", "depth"} for t in trials)
    assert all(abs(t.user_attrs["flops_used"] / 4e9 - 1) <= 0.01 for t in trials)
    fit = _equiscale("fit", "--storage", url, "--bootstrap", "20", cwd=tmp_path, pythonpath=[deepsets_path])
    assert fit.returncode == 0, fit.stderr
    assert "deepsets" in fit.stdout
    report = _equiscale("report", "--storage", url, "--out", str(tmp_path / "report"), "--bootstrap", "20",
                        cwd=tmp_path, pythonpath=[deepsets_path])
    assert report.returncode == 0, report.stderr
    text = (tmp_path / "report" / "report.md").read_text()
    assert "equivariant gatr; baselines deepsets" in text


@pytest.mark.slow
def test_a_task_from_an_import_path_runs_the_built_in_families(tmp_path):
    url = f"sqlite:///{tmp_path / 'ballistic.db'}"
    run = _equiscale("run", str(EXAMPLES / "ballistic.toml"), "--storage", url, "--quiet", cwd=tmp_path,
                     pythonpath=[EXAMPLES / "toy_task"])
    assert run.returncode == 0, run.stderr
    stored = _stored(url)
    _check_same_attributes(stored, "transformer", "gatr")
    attrs, trials = stored["gatr/1e+10"]
    assert attrs["dataset_key"].startswith("ballistic-") and attrs["settings"]["task"] == "ballistic"
    # the task's own data: free flight is easy, so the losses sit far below the rigid-body plateau (~0.08)
    assert min(t.value for t in trials) < 0.01
    # GATr is exactly equivariant on the toy task's inputs too (the task's own equivariance check)
    assert max(t.user_attrs["equivariance_error"] for t in trials) < 1e-4
    fit = _equiscale("fit", "--storage", url, "--bootstrap", "20", cwd=tmp_path, pythonpath=[EXAMPLES / "toy_task"])
    assert fit.returncode == 0, fit.stderr
    report = _equiscale("report", "--storage", url, "--out", str(tmp_path / "report"), "--bootstrap", "20",
                        cwd=tmp_path, pythonpath=[EXAMPLES / "toy_task"])
    assert report.returncode == 0, report.stderr
    assert "equivariant gatr; baselines transformer" in (tmp_path / "report" / "report.md").read_text()


def test_the_example_familys_flop_count_is_what_torch_counts(deepsets_path):
    """The example's analytic FLOPs equal FlopCounterMode on a real forward + backward step."""
    sys.path.insert(0, str(deepsets_path))
    try:
        from equiscale_deepsets import family
    finally:
        sys.path.remove(str(deepsets_path))
    sample = {"bodies": 3, "markers": 4, "props": 8}
    for shape in ({"width": 5, "depth": 0}, {"width": 64, "depth": 2}):
        model = family.build(sample, shape)
        batch = 7
        pos0, vel0 = torch.randn(batch, 3, 4, 3), torch.randn(batch, 3, 4, 3)
        props = torch.randn(batch, 3, 8)
        with FlopCounterMode(display=False) as counter, sdpa_kernel(SDPBackend.MATH):
            model(pos0, vel0, props).sum().backward()
        expected = batch * (family.forward_flops(sample, shape) + family.backward_flops(sample, shape))
        assert counter.get_total_flops() == expected, shape
        assert sum(p.numel() for p in model.parameters()) == family.param_count(sample, shape)


BAD_PLUGINS = [
    ('families = ["nope"]', "unknown model family 'nope'"),
    ('families = ["mlp"]\n[plugins]\nfamilies = { mlp = "no_such_module_xyz:family" }',
     "family 'mlp': module 'no_such_module_xyz' does not import"),
    ('families = ["mlp"]\n[plugins]\nfamilies = { mlp = "study.models.registry:nothing" }',
     "family 'mlp': module 'study.models.registry' has no 'nothing'"),
    ('families = ["mlp"]\n[plugins]\nfamilies = { mlp = "search_spaces.transformer:space" }',
     "is missing 'name'"),
    ('families = ["transformer"]\ntask = "toy"\n[plugins]\ntasks = { toy = "study.kinds.compute:kind" }',
     "is missing 'sample_dims'"),
    ('families = ["transformer"]\nsampler = "cmaes"', "unknown sampler 'cmaes'"),
    ('families = ["transformer"]\n[plugins]\nsamplers = { x = "a:b" }', "unknown plugin group 'samplers'"),
]


@pytest.mark.parametrize("body, message", BAD_PLUGINS)
def test_a_bad_plugin_is_one_line_exit_2_and_nothing_is_stored(tmp_path, body, message):
    study_file = tmp_path / "bad.toml"
    study_file.write_text("budgets = [1e10]\n" + body + "\n")
    url = f"sqlite:///{tmp_path / 'bad.db'}"
    result = _equiscale("run", str(study_file), "--storage", url, cwd=tmp_path, timeout=120)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], result.stderr
    assert not (tmp_path / "bad.db").exists()


def test_equiscale_data_on_another_tasks_study_is_one_line_exit_2(tmp_path):
    result = _equiscale("data", str(EXAMPLES / "ballistic.toml"), cwd=tmp_path, pythonpath=[EXAMPLES / "toy_task"],
                        timeout=120)
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1
    assert "task 'ballistic'" in result.stderr and not (tmp_path / "cache").exists()
