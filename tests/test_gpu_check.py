"""benchmarks/gpu_check.py without a GPU: it refuses cleanly, and its dry run (CPU, tiny sizes) goes through every
step — throughput, the grid study into SQLite, the storage check, the memory pass, the output files — and its
storage check is compared with an independent reading of the storage (and shown to fail on a bad one)."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import optuna
import pytest

from tests.scripts import load_benchmark

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "gpu_check.py"


def _module():
    return load_benchmark("gpu_check")


def _run(*args, env=None, timeout=600):
    return subprocess.run([sys.executable, str(SCRIPT), *args], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=timeout)


def test_without_cuda_it_refuses_with_one_line_and_status_2_writing_nothing(tmp_path):
    out = tmp_path / "out"
    done = _run("--out", str(out), env={"CUDA_VISIBLE_DEVICES": ""})
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0 and "no CUDA device" in done.stderr
    assert not out.exists()


@pytest.mark.slow
def test_the_dry_run_trains_checks_and_writes_everything_and_its_storage_check_can_fail(tmp_path):
    out = tmp_path / "dry"
    done = _run("--dry-run", "--compile", "--out", str(out), "--cache-dir", str(tmp_path / "cache"))
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    summary = done.stdout.strip().splitlines()[-1]
    assert summary.startswith("gpu_check cpu (dry run):") and summary.endswith("PASS")
    results = json.loads((out / "gpu_check.json").read_text())
    assert results["passed"] and results["summary"] == summary
    assert summary in (out / "report.md").read_text()
    rows = results["throughput"]
    assert {(r["family"], r["size"], r["compiled"]) for r in rows} == {
        (f, s, False) for f in ("transformer", "transformer-aug", "gatr") for s in ("smallest", "middle", "largest")
    } | {(f, "largest", True) for f in ("transformer", "transformer-aug", "gatr")}   # --compile: the largest again
    for r in rows:
        if r["compiled"]:
            assert f"| {r['family']} | largest, compiled | " in (out / "report.md").read_text()
    assert summary.count("(compiled ") == 3
    # no timing bound (the machine is shared: a loaded one measures a low peak): the ratios recomputed from the
    # stored step time, step FLOPs, batch and the peak measured in the same run
    for r in rows:
        assert r["step_seconds"] > 0 and r["step_flops"] > 0 and results["peak_flops"] > 0
        assert r["samples_per_s"] == pytest.approx(r["batch"] / r["step_seconds"], rel=1e-9)
        assert r["of_peak"] == pytest.approx(r["step_flops"] / r["step_seconds"] / results["peak_flops"], rel=1e-9)
    assert all(0 <= r["matmul_share"] <= 1 for r in results["breakdown"]) and len(results["breakdown"]) == 3

    # the storage read independently: 3 families x 2 budgets, 4 COMPLETE trials each, flops within 1%
    url = f"sqlite:///{out / 'study.db'}"
    summaries = optuna.get_all_study_summaries(url, include_best_trial=False)
    assert len(summaries) == 6
    for s in summaries:
        trials = optuna.load_study(study_name=s.study_name, storage=url).get_trials()
        assert [t.state for t in trials] == [optuna.trial.TrialState.COMPLETE] * 4
        budget = float(s.user_attrs["budget"])
        assert all(abs(t.user_attrs["flops_used"] / budget - 1) <= 0.01 for t in trials)
    assert results["storage"]["complete"] == 24 == len(results["memory"])

    # a storage with one extra failed trial fails the check
    module = _module()
    bad = tmp_path / "bad.db"
    shutil.copy(out / "study.db", bad)
    bad_url = f"sqlite:///{bad}"
    study = optuna.load_study(study_name=summaries[0].study_name, storage=bad_url)
    study.add_trial(optuna.trial.create_trial(state=optuna.trial.TrialState.FAIL))
    config = module.tiny_config(bad_url)
    verdict = module.check_storage(config, {})
    assert not verdict["passed"] and any("4 COMPLETE of 5 trials" in p for p in verdict["problems"])
    assert module.check_storage(module.tiny_config(url), {})["passed"]

    # the CUDA branch of the device check, on the same storage read as if its trials had asked for GPUs
    config = module.tiny_config(url)
    on_gpu = dataclasses.replace(config, resources=dataclasses.replace(config.resources, gpus_per_trial=0.25))
    assert module.check_storage(on_gpu, {"gpu_processes": {4242: 900.0}, "gpu_memory_rise_mib": 0.0})["passed"]
    assert module.check_storage(on_gpu, {"gpu_processes": {}, "gpu_memory_rise_mib": 3000.0})["passed"]
    unseen = module.check_storage(on_gpu, {"gpu_processes": {}, "gpu_memory_rise_mib": 10.0})
    assert not unseen["passed"] and unseen["device_verdict"] == "device cuda not shown"
