"""Study-level utilisation: training FLOPs of COMPLETE trials ÷ (wall time × matmul peak measured in this run).

Either runs a study itself and times the whole command (cold dataset cache unless --cache-dir is given):

    python benchmarks/study_utilisation.py --run            # the embedded default study
    python benchmarks/study_utilisation.py --run studies/cpu.toml --storage sqlite:///cpu.db

or reads a stored study, with wall time from the first trial's start to the last trial's end (add
--command-seconds when the whole command's wall time is known, e.g. from its log):

    python benchmarks/study_utilisation.py --storage sqlite:///docs/results/cpu/compute.db

Prints where the wall time went: data and start-up (before the first trial), training inside trials,
evaluation inside trials (final val/test losses, equivariance), per-trial overhead outside `train`
(actor start, scheduling, storage writes) and idle slots (fewer running trials than slots).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time

import optuna
from optuna.trial import TrialState

from study import schema
from study.estimate import matmul_rate


def trials_of(url: str) -> list[optuna.trial.FrozenTrial]:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    out = []
    for summary in optuna.get_all_study_summaries(url, include_best_trial=False):
        if schema.read_study_attrs(summary.user_attrs) is None:
            continue
        out += optuna.load_study(study_name=summary.study_name, storage=url).get_trials(deepcopy=False)
    return out


def report(url: str, *, peak: float, slots: int, command_seconds: float | None) -> float:
    """Print the utilisation and its breakdown; return the utilisation."""
    trials = [t for t in trials_of(url) if t.datetime_start and t.datetime_complete]
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    if not complete:
        sys.exit(f"study_utilisation: no COMPLETE trials in {url}")
    records = [schema.read_trial(t) for t in complete]
    flops = sum(r.flops_used or 0.0 for r in records)
    first = min(t.datetime_start for t in trials)
    last = max(t.datetime_complete for t in trials)
    span = (last - first).total_seconds()
    wall = command_seconds if command_seconds is not None else span
    in_trial = sum((t.datetime_complete - t.datetime_start).total_seconds() for t in trials)
    trained = sum(float(t.user_attrs.get(schema.WALL_SECONDS, 0.0)) for t in complete)
    ideal = flops / peak
    utilisation = ideal / wall
    print(f"{len(complete)} COMPLETE trials ({len(trials) - len(complete)} other), {flops:.3e} training FLOPs")
    print(f"matmul peak (measured now, {slots} threads): {peak / 1e9:.1f} GFLOP/s")
    print(f"wall {wall:.0f} s ({'whole command' if command_seconds is not None else 'first trial start to last end'})")
    print(f"study-level utilisation: {utilisation:.1%}")
    print("where the wall time went (share of wall x slots):")
    total = wall * slots
    rows = [
        ("before the first trial (data, Ray start)", (wall - span) * slots if command_seconds is not None else 0.0),
        ("at peak (ideal time of the training FLOPs)", ideal * slots),
        ("inside train(): below peak, validation, final eval", trained - ideal * slots),
        ("per-trial overhead outside train()", in_trial - trained),
        ("idle slots (fewer trials running than slots)", span * slots - in_trial),
    ]
    for name, seconds in rows:
        print(f"  {name:52s} {seconds:9.0f} s  {seconds / total:6.1%}")
    return utilisation


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", nargs="?", const="", default=None, metavar="CONFIG",
                        help="run this study file (empty: the embedded default) and time the whole command")
    parser.add_argument("--storage", help="storage URL to read (with --run: where the study is stored)")
    parser.add_argument("--cache-dir", help="with --run: dataset cache (default: a fresh one, cold cache)")
    parser.add_argument("--slots", type=int, default=os.cpu_count(), help="concurrent trial slots (default: CPUs)")
    parser.add_argument("--command-seconds", type=float, help="wall time of the whole command, when known")
    args = parser.parse_args()
    command_seconds = args.command_seconds
    with tempfile.TemporaryDirectory(prefix="equiscale-util-") as tmp:
        url = args.storage or f"sqlite:///{tmp}/study.db"
        if args.run is not None:
            env = dict(os.environ, EQUISCALE_CACHE_DIR=args.cache_dir or f"{tmp}/cache")
            command = [sys.executable, "-m", "study.cli", "run", *([args.run] if args.run else []),
                       "--storage", url, "--quiet"]
            start = time.perf_counter()
            subprocess.run(command, env=env, check=True)
            command_seconds = time.perf_counter() - start
        elif args.storage is None:
            parser.error("give --run or --storage")
        peak = matmul_rate(threads=args.slots, size=2048, repeats=10)
        report(url, peak=peak, slots=args.slots, command_seconds=command_seconds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
