"""`equiscale run`: resume or start the budget-constrained studies (the embedded default without CONFIG)."""

from __future__ import annotations

import argparse
import signal
import sys

from study.config import DEFAULT_STORAGE, load_config, with_overrides
from study.errors import ConfigError
from study.estimate import CONFIRM_HOURS, estimate
from study.pipeline import preflight, run_study
from study.progress import Progress
from study.resume import remaining_of, stored_trials


def add_arguments(parser) -> None:
    parser.add_argument("config", nargs="?", help="study TOML (default: the embedded default study)")
    parser.add_argument("--family", action="append", dest="families", metavar="F", help="family (repeatable)")
    parser.add_argument("--budget", action="append", dest="budgets", type=_float, metavar="C",
                        help="training-FLOP budget (repeatable; with per-budget batch_sizes or budget_step_ranges, "
                             "each takes the entries of the study file's nearest budget)")
    parser.add_argument("--trials", type=int, help="COMPLETE trials wanted per study")
    parser.add_argument("--storage", help=f"Optuna storage URL (default {DEFAULT_STORAGE})")
    parser.add_argument("--address", help="address of an existing Ray cluster (default: start a local one)")
    parser.add_argument("--cpus-per-trial", type=_float, metavar="X")
    parser.add_argument("--gpus-per-trial", type=_float, metavar="X", help="fractions allowed (e.g. 0.25)")
    parser.add_argument("--quiet", action="store_true", help="no progress lines")
    parser.add_argument("--yes", action="store_true",
                        help=f"start even when the estimate exceeds {CONFIRM_HOURS:g} hours")


def _float(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None


def _interrupt(signum, frame) -> None:
    """SIGTERM stops a run like Ctrl-C: Tune ends its trials, they are marked FAIL, Ray shuts down."""
    signal.raise_signal(signal.SIGINT)


def main(args) -> int:
    signal.signal(signal.SIGTERM, _interrupt)
    config = with_overrides(
        load_config(args.config), families=args.families, budgets=args.budgets, trials=args.trials,
        storage=args.storage, address=args.address, cpus_per_trial=args.cpus_per_trial,
        gpus_per_trial=args.gpus_per_trial,
    )
    run = preflight(config)   # the one pre-flight: refused here (exit 2) before anything is measured or written
    stored = stored_trials(run.storage, run)
    cost = estimate(run, remaining=remaining_of(run, stored), stored=stored)
    if cost.seconds > CONFIRM_HOURS * 3600 and not args.yes:  # refused: the one error line carries the estimate
        raise ConfigError(f"this run is estimated at {cost.line()}; add --yes to start it")
    progress = Progress(enabled=not args.quiet, expected=cost.per_trial, slots=cost.slots)
    progress.message(f"estimate: {cost.line()}")
    summary = run_study(run, progress=progress)
    print(summary.table())
    if summary.short:
        n = len(summary.short)
        print(f"equiscale run: {n} stud{'y' if n == 1 else 'ies'} short of the target "
              f"(failed trials; run again to retry): {', '.join(summary.short)}", file=sys.stderr)
        return 1
    return 0
