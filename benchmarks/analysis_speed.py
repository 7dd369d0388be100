"""Wall time of `equiscale fit`, `equiscale plot` and `equiscale report` (each a fresh process, imports included).

Times the commands on `--storage URL` (copied first when it is a SQLite file, so a study still being
written is not disturbed), or on a synthetic storage it builds: 3 families × `--budgets` budgets ×
`--per-budget` trials (default 3 × 6 × 16 = 288 trials) drawn from a known L(N, D) with 1% noise.
`--storage` may be given several times (a compute and a data study): fit and plot get the first storage
that holds compute studies, report gets them all. Prints wall and CPU seconds per command (CPU as well:
on a shared machine wall time includes waiting) and the load average before each.

    .venv/bin/python benchmarks/analysis_speed.py [--storage sqlite:///compute.db [--storage sqlite:///data.db]]
        [--repeat 1] [-- extra fit args]
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import optuna

from study import schema
from study.cli import run_script

LAWS = {  # family -> (E, A, B, alpha, beta): C = 6·N·D
    "transformer": (0.05, 8.0, 60.0, 0.30, 0.33),
    "transformer-aug": (0.045, 8.0, 60.0, 0.31, 0.33),
    "gatr": (0.04, 6.0, 50.0, 0.32, 0.30),
}


def build_storage(url: str, *, budgets: int, per_budget: int, seed: int = 0) -> int:
    """Synthetic IsoFLOP studies in `url`; returns the number of trials."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    rng = np.random.default_rng(seed)
    dist = {"x": optuna.distributions.FloatDistribution(0, 1)}
    count = 0
    for family, (e, a, b, alpha, beta) in LAWS.items():
        for c in np.geomspace(1e10, 1e10 * 2 ** (budgets - 1), budgets):
            n_opt = (alpha * a / (beta * b)) ** (1 / (alpha + beta)) * (c / 6) ** (beta / (alpha + beta))
            n = n_opt * np.geomspace(0.1, 10, per_budget) * np.exp(rng.normal(0, 0.05, per_budget))
            d = c / (6 * n)
            loss = (e + a / n**alpha + b / d**beta) * np.exp(rng.normal(0, 0.01, per_budget))
            study = optuna.create_study(storage=url, study_name=schema.study_name(family, c))
            schema.write_study_attrs(study, schema.StudyAttrs(family=family, budget=float(c), batch_size=64,
                                                              dataset_key="synthetic", target_trials=per_budget))
            for nn, dd, ll in zip(n, d, loss):
                attrs = {schema.PARAMS: int(nn), schema.SAMPLES: int(dd), schema.STEPS: int(dd // 64),
                         schema.FLOPS_USED: float(c), schema.VAL_LOSS: float(ll), schema.TEST_LOSS: float(ll)}
                study.add_trial(optuna.trial.create_trial(value=float(ll), params={"x": 0.5}, distributions=dist,
                                                          user_attrs=attrs))
                count += 1
    return count


def _run(argv: list[str]) -> tuple[float, float, int]:
    """(wall s, CPU s of the child, return code) of `python -m study.cli ARGV`."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "study.cli", *argv], capture_output=True, text=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode:
        print(proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else "(no output)", file=sys.stderr)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), proc.returncode


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--storage", action="append", help="time on this storage, repeatable (default: a synthetic one)")
    parser.add_argument("--budgets", type=int, default=6)
    parser.add_argument("--per-budget", type=int, default=16)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("extra", nargs="*", help="extra arguments for fit and plot (after --)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        urls, what = [], []
        for i, storage in enumerate(args.storage or []):
            if storage.startswith("sqlite:///"):
                copy = Path(tmp) / f"copy{i}.db"
                shutil.copy(storage[len("sqlite:///"):], copy)
                urls.append(f"sqlite:///{copy}")
                what.append(f"{storage} (copied)")
            else:
                urls.append(storage)
                what.append(storage)
        if not urls:
            urls = [f"sqlite:///{Path(tmp) / 'synthetic.db'}"]
            count = build_storage(urls[0], budgets=args.budgets, per_budget=args.per_budget)
            what = [f"synthetic storage: {count} trials, {len(LAWS)} families × {args.budgets} budgets"]
        print(f"{'; '.join(what)}; {os.cpu_count()} CPUs")
        compute = next((u for u in urls if _has_compute(u)), None)
        commands = {}
        if compute:
            commands["fit"] = ["fit", "--storage", compute, *args.extra]
            commands["plot"] = ["plot", "--storage", compute, "--out", str(Path(tmp) / "figures"), *args.extra]
        commands["report"] = ["report", *[a for u in urls for a in ("--storage", u)], "--out", str(Path(tmp) / "report")]
        for name, argv in commands.items():
            for _ in range(args.repeat):
                load = os.getloadavg()[0]
                wall, cpu, rc = _run(argv)
                print(f"equiscale {name}: {wall:.2f} s wall, {cpu:.2f} s CPU (load average {load:.1f} before)"
                      + (f" (exit {rc})" if rc else ""))


def _has_compute(url: str) -> bool:
    """Whether the storage holds a compute study (a study with family and budget and no data `kind`)."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    for summary in optuna.get_all_study_summaries(url, include_best_trial=False):
        attrs = schema.read_study_attrs(summary.user_attrs)
        if attrs is not None and attrs.kind == schema.COMPUTE:
            return True
    return False

if __name__ == "__main__":
    raise SystemExit(run_script(main))
