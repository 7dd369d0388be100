"""`equiscale fit`: fitted laws with bootstrap intervals, as text or JSON.

Also holds the run-source and fit options that `export` and `plot` share (`add_data_arguments`,
`fit_from_args`): parsing only; the work is `analysis.api.load_runs` and `analysis.api.fit_study`.
"""

from __future__ import annotations

import argparse
import json
import sys

from analysis import axes as X
from analysis import parametric as P
from analysis.api import StudyFit, fit_study, load_runs
from analysis.isoflop import DEFAULT_WINDOW
from analysis.isoflop import BRACKET_RULE
from analysis.laws import APPROACHES, FamilyLaws, bracket_lines
from analysis.power import loss_ratios
from analysis.trials import BUDGET_TOLERANCE
from study import schema
from study.storage import DEFAULT_STORAGE

SUMMARY_KEYS = ("E", "A", "B", "alpha", "beta", "a", "b")
TITLES = {
    "power": "L(C) = coef·C^(−exponent), best run per budget",
    "power_irreducible": "L(C) = E + coef·C^(−exponent), best run per budget",
    "isoflop": "Approach 2 (IsoFLOP): N_opt = n_coef·C^a, D_opt = d_coef·C^b, L_opt = l_coef·C^(−l_exp)",
    "parametric": "Approach 3: L(N, D) = E + A/N^α + B/D^β; N_opt ∝ C^a, D_opt ∝ C^b",
}


def add_data_arguments(parser: argparse.ArgumentParser, *, bootstrap: int = 200) -> None:
    """Source of runs (study storage or CSV), which approaches, and the bootstrap."""
    src = parser.add_argument_group("runs")
    src.add_argument("--storage", default=None, metavar="URL",
                     help=f"Optuna storage with the studies (default {DEFAULT_STORAGE})")
    src.add_argument("--loss", choices=(schema.VAL_LOSS, schema.TEST_LOSS), default=schema.VAL_LOSS,
                     help=f"which stored loss to fit (storage only; default {schema.VAL_LOSS})")
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
    add_compute_argument(src)
    fit = parser.add_argument_group("fit")
    fit.add_argument("--approach", choices=(*APPROACHES, "all"), default="all",
                     help="which law(s) to fit (default all: those the data supports, others reported)")
    fit.add_argument("--bootstrap", type=int, default=bootstrap, metavar="N",
                     help=f"bootstrap resamples of runs for the intervals (default {bootstrap}; 0: none)")
    fit.add_argument("--level", type=float, default=0.95, help="interval level (default 0.95)")
    fit.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")
    fit.add_argument("--refine", type=int, default=P.DEFAULT_REFINE, metavar="K",
                     help=f"Approach 3: L-BFGS from at most the K best of the 4,500 grid starts "
                          f"(default {P.DEFAULT_REFINE}; 0: all)")
    fit.add_argument("--isoflop-window", type=float, default=DEFAULT_WINDOW, metavar="DECADES",
                     help=f"Approach 2: fit each budget's parabola to the runs within this many decades of N "
                          f"of its best run (default {DEFAULT_WINDOW}; 0: every run)")
    add_robust_argument(fit)
    fit.add_argument("--jobs", type=int, default=1, metavar="J",
                     help="processes for the Approach-3 bootstrap (default 1: a pool costs more than it saves "
                          "below thousands of runs)")


def add_robust_argument(parser) -> None:
    """`--isoflop-robust SCALE`: Approach 2's parabolas with a Cauchy loss (analysis.isoflop)."""
    parser.add_argument("--isoflop-robust", type=float, default=None, metavar="SCALE",
                        help="Approach 2: fit each budget's parabola with a Cauchy loss of scale SCALE × its lowest "
                             "loss, so that a run stuck far above its neighbours pulls the vertex little "
                             "(default: least squares)")


def add_compute_argument(parser) -> None:
    """`--compute AXIS`: how a run's compute is counted (analysis.axes)."""
    parser.add_argument("--compute", choices=X.AXES, default=X.EXECUTED,
                        help="how compute is counted: executed FLOPs (the budget, default), nominal 3×forward FLOPs, "
                             "idealised FLOPs (GATr's equivariant maps and bilinears by their nonzero terms) or "
                             "measured training seconds; runs stay grouped by their stored budget")


def fit_from_args(args, *, approaches=None, strict: bool | None = None, require_fit: bool = True) -> StudyFit:
    """Load the runs named by the options and fit them; an approach the data cannot support is an error
    only when it was asked for by name (with `all` it is reported in `FamilyLaws.skipped`; strict=False:
    never)."""
    runs = load_runs(args.storage, loss=args.loss, csv=args.from_csv, n_column=args.n_column,
                     loss_column=args.loss_column, d_column=args.d_column, c_column=args.c_column,
                     family_column=args.family_column, flops_per_param_sample=args.flops_per_param_sample,
                     budget_tolerance=args.budget_tolerance)
    chosen = approaches or (APPROACHES if args.approach == "all" else (args.approach,))
    return fit_study(runs, approaches=chosen, n_boot=args.bootstrap, seed=args.seed, level=args.level,
                     refine=args.refine, drop_highest_loss=args.drop_highest_loss,
                     window=args.isoflop_window or None, robust=args.isoflop_robust,
                     strict=args.approach != "all" if strict is None else strict, n_jobs=args.jobs,
                     axis=args.compute, require_fit=require_fit)


def report_exclusions(result: StudyFit, stream=None) -> None:
    for line in result.exclusion_lines():
        print(line, file=stream or sys.stderr)


def add_arguments(parser) -> None:
    add_data_arguments(parser)
    parser.add_argument("--json", action="store_true", help="machine-readable output (see README)")


def family_summary(laws: FamilyLaws) -> dict:
    """JSON of one family: top-level E, A, B, alpha, beta (Approach 3) and a, b (Approach 3, else
    Approach 2), each {"value", "ci"} (value and ci null plus "not_identified": why, where not identified);
    every approach's estimates under "approaches"."""
    out = {"family": laws.family, "runs": laws.n_runs, "budgets": laws.n_budgets, "compute": laws.axis,
           "flops_model": {"K": laws.flops_model.K, "kappa": laws.flops_model.kappa},
           "bootstrap": laws.n_boot, "level": laws.level}
    for source in ("isoflop", "parametric"):  # parametric wins where both give a, b
        for key, est in laws.estimates.get(source, {}).items():
            if key in SUMMARY_KEYS:
                out[key] = {**est.as_dict(), "approach": source}
    out["approaches"] = {a: {k: e.as_dict() for k, e in est.items()} for a, est in laws.estimates.items()}
    if laws.isoflop is not None:
        out["isoflop_window"] = {"decades": laws.isoflop.window, "rule": laws.isoflop.describe_window(),
                                 "rejected_budgets": {f"{c:.6g}": why for c, why in laws.isoflop.rejected.items()}}
    out["bracketing"] = {"rule": BRACKET_RULE, "budgets": {f"{c:.6g}": k.text() for c, k in laws.brackets.items()}}
    out["skipped"] = dict(laws.skipped)
    return out


def family_text(laws: FamilyLaws) -> str:
    m = laws.flops_model
    lines = [f"family {laws.family}: {laws.n_runs} runs, {laws.n_budgets} budgets; compute: {X.SHORT[laws.axis]} "
             f"[{X.UNIT[laws.axis]}]; C = {m.K:.4g}·N^(1{m.kappa:+.3f})·D; {laws.n_boot} bootstrap resamples, "
             f"{laws.level:.0%} intervals"]
    if laws.brackets:
        lines.append(f"  bracketing rule: {BRACKET_RULE}")
        lines += [f"    {line}" for line in bracket_lines(laws)]
    for approach, est in laws.estimates.items():
        lines.append(f"  {TITLES[approach]}")
        if approach == "isoflop":
            lines.append(f"    window: {laws.isoflop.describe_window()}")
            lines += [f"    budget left out: {why}" for why in laws.isoflop.rejected.values()]
        lines += [f"    {key:>9} = {e.text()}" for key, e in est.items()]
    for approach, why in laws.skipped.items():
        lines.append(f"  {approach}: not identified: {why}")
    return "\n".join(lines)


def ratio_text(ratios) -> str:
    """The loss-ratio table with '—' where a family has no run at a budget (never 'nan')."""
    shown = ratios.apply(lambda col: col.map(lambda v: "—" if v != v else f"{v:.4f}"))
    shown.index = [f"{c:.3g}" for c in ratios.index]
    shown.index.name = "budget"
    return shown.to_string()


def main(args) -> int:
    result = fit_from_args(args)
    report_exclusions(result)
    laws = result.laws
    ratios = loss_ratios(result.runs.frame, reference=result.runs.claims().plain) if len(laws) > 1 else None
    if args.json:
        doc = {"source": result.runs.source, "compute": result.runs.axis,
               "families": {f: family_summary(l) for f, l in laws.items()}}
        if len(laws) == 1:
            doc.update({k: v for k, v in next(iter(doc["families"].values())).items() if k in SUMMARY_KEYS})
        if ratios is not None:
            doc["loss_ratios"] = {col: {f"{c:.6g}": (None if v != v else float(v)) for c, v in ratios[col].items()}
                                  for col in ratios.columns}
        print(json.dumps(doc, indent=2))
        return 0
    print("\n\n".join(family_text(l) for l in laws.values()))
    if ratios is not None:
        print("\nbest-loss ratio per budget ('—': no run of that family at that budget):")
        print(ratio_text(ratios))
    return 0
