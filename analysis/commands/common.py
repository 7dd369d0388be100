"""Options and steps shared by `equiscale fit`, `export` and `plot`: where the runs come from, fitting."""

from __future__ import annotations

import argparse
import sys

from analysis import parametric as P
from analysis.allocation import FlopsModel
from analysis.laws import APPROACHES, FamilyLaws, fit_family
from analysis.trials import BUDGET_TOLERANCE, Runs, load_csv, load_storage
from study.errors import ConfigError, EquiscaleError

DEFAULT_STORAGE = "sqlite:///equiscale.db"


def add_data_arguments(parser: argparse.ArgumentParser, *, bootstrap: int = 200) -> None:
    """Source of runs (study storage or CSV), which approaches, and the bootstrap."""
    src = parser.add_argument_group("runs")
    src.add_argument("--storage", default=None, metavar="URL",
                     help=f"Optuna storage with the studies (default {DEFAULT_STORAGE})")
    src.add_argument("--loss", choices=("val_loss", "test_loss"), default="val_loss",
                     help="which stored loss to fit (storage only; default val_loss)")
    src.add_argument("--from-csv", metavar="FILE", help="fit a CSV table of runs instead of a storage")
    src.add_argument("--n-column", metavar="COL", help="CSV column with parameters N")
    src.add_argument("--d-column", metavar="COL", help="CSV column with training samples/tokens D")
    src.add_argument("--c-column", metavar="COL",
                     help="CSV column with training compute C instead of D; then D = C / (k·N)")
    src.add_argument("--loss-column", metavar="COL", help="CSV column with the final loss")
    src.add_argument("--family-column", metavar="COL", help="CSV column naming the family (default: one family)")
    src.add_argument("--flops-per-param-sample", type=float, default=6.0, metavar="K",
                     help="CSV only: k in C = k·N·D (default 6)")
    src.add_argument("--budget-tolerance", type=float, default=BUDGET_TOLERANCE, metavar="REL",
                     help="CSV only: compute values within this relative gap form one budget (default 0.01)")
    src.add_argument("--drop-highest-loss", type=int, default=0, metavar="K",
                     help="leave out the K highest-loss runs of each family (reported, never silent)")
    fit = parser.add_argument_group("fit")
    fit.add_argument("--approach", choices=(*APPROACHES, "all"), default="all",
                     help="which law(s) to fit (default all: those the data supports, others reported)")
    fit.add_argument("--bootstrap", type=int, default=bootstrap, metavar="N",
                     help=f"bootstrap resamples of runs for the intervals (default {bootstrap}; 0: none)")
    fit.add_argument("--level", type=float, default=0.95, help="interval level (default 0.95)")
    fit.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")
    fit.add_argument("--refine", type=int, default=P.DEFAULT_REFINE, metavar="K",
                     help=f"Approach 3: L-BFGS from the K best of the 4,500 grid starts (default {P.DEFAULT_REFINE}; 0: all)")
    fit.add_argument("--jobs", type=int, default=None, metavar="J", help="processes for the bootstrap (default: CPUs)")


def load_runs(args) -> tuple[Runs, FlopsModel | None]:
    """The runs named by the options, and the fixed FLOP model for CSV input (None: per family)."""
    csv_only = [o for o in ("n_column", "d_column", "c_column", "loss_column", "family_column") if getattr(args, o)]
    if args.from_csv is None:
        if csv_only:
            raise ConfigError(f"--{csv_only[0].replace('_', '-')} needs --from-csv")
        return load_storage(args.storage or DEFAULT_STORAGE, loss=args.loss), None
    if args.storage:
        raise ConfigError("give either --storage or --from-csv, not both")
    for opt in ("n_column", "loss_column"):
        if not getattr(args, opt):
            raise ConfigError(f"--from-csv needs --{opt.replace('_', '-')}")
    runs = load_csv(args.from_csv, n_column=args.n_column, loss_column=args.loss_column, d_column=args.d_column,
                    c_column=args.c_column, family_column=args.family_column,
                    flops_per_param_sample=args.flops_per_param_sample, tolerance=args.budget_tolerance)
    return runs, FlopsModel(K=args.flops_per_param_sample, kappa=0.0)


def _check_args(args) -> None:
    if args.bootstrap < 0:
        raise ConfigError(f"--bootstrap must be ≥ 0, got {args.bootstrap}")
    if not 0 < args.level < 1:
        raise ConfigError(f"--level must be between 0 and 1, got {args.level}")
    if args.refine < 0:
        raise ConfigError(f"--refine must be ≥ 0, got {args.refine}")
    if args.drop_highest_loss < 0:
        raise ConfigError(f"--drop-highest-loss must be ≥ 0, got {args.drop_highest_loss}")


def fit_runs(args, *, approaches=None) -> tuple[Runs, dict[str, FamilyLaws]]:
    """Load the runs and fit every family; an approach the data cannot support is an error only when
    it was asked for by name (with `all` it is reported in `FamilyLaws.skipped`)."""
    _check_args(args)
    runs, model = load_runs(args)
    chosen = approaches or (APPROACHES if args.approach == "all" else (args.approach,))
    laws = {}
    for family in runs.families():
        frame = runs.frame[runs.frame["family"] == family]
        if args.drop_highest_loss:
            if args.drop_highest_loss >= len(frame):
                raise ConfigError(f"--drop-highest-loss {args.drop_highest_loss} leaves no runs of {family!r}")
            frame = frame.sort_values("loss", kind="stable").iloc[: len(frame) - args.drop_highest_loss]
            runs.excluded[f"{family}: among the {args.drop_highest_loss} highest losses (--drop-highest-loss)"] = (
                args.drop_highest_loss)
        laws[family] = fit_family(
            frame, family=family, approaches=chosen, n_boot=args.bootstrap, seed=args.seed, level=args.level,
            refine=args.refine or None, flops_model=model, batch_size=runs.batch_sizes.get(family),
            strict=args.approach != "all", n_jobs=args.jobs)
        if len(laws[family].skipped) >= len(chosen) and all(a in laws[family].skipped for a in chosen):
            raise EquiscaleError(f"family {family!r}: no law could be fitted: "
                                 + "; ".join(f"{k}: {v}" for k, v in laws[family].skipped.items()))
    return runs, laws


def report_exclusions(runs: Runs, stream=None) -> None:
    """One line per reason runs were left out, so that nothing is dropped silently."""
    stream = stream or sys.stderr
    for reason, count in runs.excluded.items():
        print(f"left out {count} run(s): {reason}", file=stream)
