"""Study-level utilisation: training FLOPs of COMPLETE trials ÷ (wall time × matmul peak measured in this run).

Either runs a study itself and times the whole command (cold dataset cache unless --cache-dir is given):

    python benchmarks/study_utilisation.py --run            # the embedded default study
    python benchmarks/study_utilisation.py --run studies/cpu.toml --storage sqlite:///cpu.db

or reads a stored study, with wall time from the first trial's start to the last trial's end (add
--command-seconds when the whole command's wall time is known, e.g. from its log):

    python benchmarks/study_utilisation.py --storage sqlite:///docs/results/cpu/compute.db

or compares stacked replicate groups (`[resources] stack`) against training every trial alone, in one run: the
1e11-1e12 studies of a study file run twice into scratch storages (stack = 1, then stack = R), the dataset cached
first (untimed) so that both arms start warm, the matmul peak measured in the same run:

    python benchmarks/study_utilisation.py --compare studies/cpu.toml [--budgets 1e11 1e12] [--stack 4]
        [--families transformer gatr] [--trials N] [--cap N] [--slots 2]

(`--trials`: COMPLETE trials per study of a grid/TPE file; `--cap`: the `[isoflop]` cap of an adaptive one. Only
an adaptive file ever stacks: a grid point is one trial.) Each arm prints its report; then the ratio of the two.

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

import numpy as np
import optuna
from optuna.trial import TrialState

from study import schema
from study.cli import run_script
from study.estimate import matmul_rate


def trials_of(url: str) -> list[optuna.trial.FrozenTrial]:
    return [t for _, t in named_trials(url)]


def named_trials(url: str) -> list[tuple[str, optuna.trial.FrozenTrial]]:
    """(study name, trial) for every trial of the storage's equiscale studies."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    out = []
    for summary in optuna.get_all_study_summaries(url, include_best_trial=False):
        if schema.read_study_attrs(summary.user_attrs) is None:
            continue
        out += [(summary.study_name, t) for t in
                optuna.load_study(study_name=summary.study_name, storage=url).get_trials(deepcopy=False)]
    return out


def occupied_seconds(named: list[tuple[str, optuna.trial.FrozenTrial]]) -> float:
    """Slot-seconds the trials held, start to end: a stacked group's members share one slot, so the group's span
    (its first start to its last end) counts once."""
    spans: dict[tuple, list] = {}
    for name, t in named:
        key = (name, frozenset([t.number, *t.user_attrs.get(schema.STACKED_WITH, ())]))
        span = spans.setdefault(key, [t.datetime_start, t.datetime_complete])
        span[0], span[1] = min(span[0], t.datetime_start), max(span[1], t.datetime_complete)
    return sum((end - start).total_seconds() for start, end in spans.values())


def report(url: str, *, peak: float, slots: int, command_seconds: float | None) -> dict:
    """Print the utilisation and its breakdown; return the utilisation."""
    named = [(n, t) for n, t in named_trials(url) if t.datetime_start and t.datetime_complete]
    trials = [t for _, t in named]
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    if not complete:
        sys.exit(f"study_utilisation: no COMPLETE trials in {url}")
    records = [schema.read_trial(t) for t in complete]
    flops = sum(r.flops_used or 0.0 for r in records)
    first = min(t.datetime_start for t in trials)
    last = max(t.datetime_complete for t in trials)
    span = (last - first).total_seconds()
    wall = command_seconds if command_seconds is not None else span
    in_trial = occupied_seconds(named)
    trained = sum(float(t.user_attrs.get(schema.WALL_SECONDS, 0.0)) for t in complete)
    looped = sum(float(t.user_attrs.get(schema.TRAIN_SECONDS, t.user_attrs.get(schema.WALL_SECONDS, 0.0)))
                 for t in complete)
    stacked = sum(schema.STACKED_WITH in t.user_attrs for t in trials)
    ideal = flops / peak
    utilisation = ideal / wall
    print(f"{len(complete)} COMPLETE trials ({len(trials) - len(complete)} other; {stacked} trained in stacked "
          f"groups), {flops:.3e} training FLOPs")
    print(f"matmul peak (measured now, {slots} threads): {peak / 1e9:.1f} GFLOP/s")
    print(f"wall {wall:.0f} s ({'whole command' if command_seconds is not None else 'first trial start to last end'})")
    print(f"study-level utilisation: {utilisation:.1%}")
    print("where the wall time went (share of wall x slots):")
    total = wall * slots
    rows = [
        ("before the first trial (data, Ray start)", (wall - span) * slots if command_seconds is not None else 0.0),
        ("at peak (ideal time of the training FLOPs)", ideal * slots),
        ("training loops: below peak, periodic validation", looped - ideal * slots),
        ("final evaluation (val/test losses, equivariance)", trained - looped),
        ("per-trial overhead outside train()", in_trial - trained),
        ("idle slots (fewer trials running than slots)", span * slots - in_trial),
    ]
    for name, seconds in rows:
        print(f"  {name:52s} {seconds:9.0f} s  {seconds / total:6.1%}")
    step_costs(url)
    return {"utilisation": utilisation, "flops": flops, "wall": wall, "complete": len(complete)}


def step_costs(url: str) -> dict[str, tuple[float, float, float]]:
    """Per family, a least-squares line through its trials' seconds per training step against FLOPs per step
    (stacked members' equal shares included): seconds = fixed + FLOPs / rate. Prints the fixed cost, the marginal
    rate and the fixed share of the median step; returns family -> (fixed s, rate FLOP/s, fixed share)."""
    by: dict[str, list[tuple[float, float]]] = {}
    for summary in optuna.get_all_study_summaries(url, include_best_trial=False):
        attrs = schema.read_study_attrs(summary.user_attrs)
        if attrs is None:
            continue
        for t in optuna.load_study(study_name=summary.study_name, storage=url).get_trials(
                deepcopy=False, states=(TrialState.COMPLETE,)):
            r = schema.read_trial(t)
            seconds = float(t.user_attrs.get(schema.TRAIN_SECONDS, t.user_attrs.get(schema.WALL_SECONDS, 0.0)))
            if r.steps and seconds > 0 and r.flops_used:
                by.setdefault(attrs.family, []).append((r.flops_used / r.steps, seconds / r.steps))
    out = {}
    print("per training step (a line through each family's trials: seconds = fixed + FLOPs / rate):")
    for family, pairs in sorted(by.items()):
        if len({x for x, _ in pairs}) < 2:
            continue
        x, y = (np.array(v) for v in zip(*pairs))
        slope, fixed = np.polyfit(x, y, 1)
        share = fixed / float(np.median(y))
        out[family] = (float(fixed), float(1 / slope) if slope > 0 else float("inf"), float(share))
        print(f"  {family}: fixed {fixed * 1e3:.2f} ms + FLOPs / {1 / slope / 1e9:.1f} GFLOP/s; the fixed part is "
              f"{share:.0%} of the median step ({np.median(y) * 1e3:.2f} ms), {len(pairs)} trials")
    return out


def variant(text: str, *, stack: int, cap: int | None) -> str:
    """The study file `text` with `[resources] stack = stack` (and `[isoflop] cap = cap`): its other lines kept."""
    out, table, placed = [], "", False
    for line in text.splitlines():
        bare = line.strip()
        if bare.startswith("[") and not bare.startswith("[["):
            table = bare.strip("[]").strip()
            out.append(line)
            if table == "resources":
                out.append(f"stack = {stack}")
                placed = True
            continue
        key = bare.split("=", 1)[0].strip() if "=" in bare and not bare.startswith("#") else ""
        if (table, key) == ("resources", "stack") or (table, key) == ("isoflop", "cap") and cap is not None:
            if key == "cap":
                out.append(f"cap = {cap}")
            continue
        out.append(line)
    if not placed:
        out += ["[resources]", f"stack = {stack}"]
    return "\n".join(out) + "\n"


def budgets_between(path: str, low: float, high: float) -> list[float]:
    """The study file's budgets within [low, high]."""
    from study.config import load_config

    return [b for b in load_config(path).budgets if low * (1 - 1e-9) <= b <= high * (1 + 1e-9)]


def compare(args, tmp: str) -> None:
    """Run the file's studies with stacking off and on (same budgets, families, trials); report both and the ratio."""
    from study.config import load_config

    text = open(args.compare, encoding="utf-8").read()
    budgets = args.budgets or budgets_between(args.compare, 1e11, 1e12)
    if not budgets:
        print(f"study_utilisation: no budget of {args.compare} within 1e11..1e12; give --budgets", file=sys.stderr)
        sys.exit(2)
    cache = args.cache_dir or os.environ.get("EQUISCALE_CACHE_DIR")
    env = dict(os.environ, **({"EQUISCALE_CACHE_DIR": cache} if cache else {}))
    subprocess.run([sys.executable, "-m", "study.cli", "data", args.compare], env=env, check=True,
                   stdout=subprocess.DEVNULL)                        # untimed: both arms read the cached dataset
    slots = args.slots or load_config(args.compare).resources.max_concurrent or os.cpu_count()
    peak = matmul_rate(threads=slots, size=2048, repeats=10)
    arms = {}
    for name, stack in (("alone (stack = 1)", 1), (f"stacked (stack = {args.stack})", args.stack)):
        path = f"{tmp}/{stack}.toml"
        with open(path, "w", encoding="utf-8") as f:
            f.write(variant(text, stack=stack, cap=args.cap))
        url = f"sqlite:///{tmp}/{stack}.db"
        command = [sys.executable, "-m", "study.cli", "run", path, "--storage", url, "--quiet", "--yes"]
        command += [f"--budget={b:g}" for b in budgets] + [f"--family={f}" for f in args.families or ()]
        command += [f"--trials={args.trials}"] if args.trials else []
        start = time.perf_counter()
        subprocess.run(command, env=env, check=True)
        seconds = time.perf_counter() - start
        print(f"\n== {name}: {args.compare}, budgets {', '.join(f'{b:g}' for b in budgets)}")
        arms[name] = report(url, peak=peak, slots=slots, command_seconds=seconds)
    (a_name, a), (b_name, b) = arms.items()
    print(f"\nstacked / alone: utilisation {b['utilisation'] / a['utilisation']:.2f}x "
          f"({b['utilisation']:.1%} vs {a['utilisation']:.1%}), command wall {b['wall'] / a['wall']:.2f}x, "
          f"training FLOPs {b['flops'] / a['flops']:.2f}x, COMPLETE trials {b['complete']} vs {a['complete']}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", nargs="?", const="", default=None, metavar="CONFIG",
                        help="run this study file (empty: the embedded default) and time the whole command")
    parser.add_argument("--storage", help="storage URL to read (with --run: where the study is stored)")
    parser.add_argument("--cache-dir", help="with --run: dataset cache (default: a fresh one, cold cache)")
    parser.add_argument("--compare", metavar="CONFIG", nargs="?", const="studies/cpu.toml", default=None,
                        help="stacking off vs on for this study file's 1e11-1e12 studies (default studies/cpu.toml)")
    parser.add_argument("--budgets", type=float, nargs="+", help="with --compare: these budgets instead")
    parser.add_argument("--families", nargs="+", help="with --compare: these families only")
    parser.add_argument("--trials", type=int, help="with --compare: COMPLETE trials per study (grid/TPE files)")
    parser.add_argument("--cap", type=int, help="with --compare: the [isoflop] cap (adaptive files)")
    parser.add_argument("--stack", type=int, default=4, help="with --compare: the stacked arm's stack (default 4)")
    parser.add_argument("--slots", type=int, default=None,
                        help="concurrent trial slots (default: CPUs; with --compare the file's max_concurrent)")
    parser.add_argument("--command-seconds", type=float, help="wall time of the whole command, when known")
    args = parser.parse_args()
    command_seconds = args.command_seconds
    if args.compare is not None:
        if args.stack < 2:
            parser.error("--stack must be >= 2 (the stacked arm; the other arm is stack = 1)")
        if not os.path.isfile(args.compare):
            parser.error(f"no study file {args.compare}")
        with tempfile.TemporaryDirectory(prefix="equiscale-util-") as tmp:
            compare(args, tmp)
        return 0
    args.slots = args.slots or os.cpu_count()
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
    raise SystemExit(run_script(main))
