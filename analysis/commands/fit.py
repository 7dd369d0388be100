"""`equiscale fit`: fitted laws with bootstrap intervals, as text or JSON."""

from __future__ import annotations

import json

from analysis.commands.common import add_data_arguments, fit_runs, report_exclusions
from analysis.laws import FamilyLaws
from analysis.power import loss_ratios

SUMMARY_KEYS = ("E", "A", "B", "alpha", "beta", "a", "b")
TITLES = {
    "power": "L(C) = coef·C^(−exponent), best run per budget",
    "power_irreducible": "L(C) = E + coef·C^(−exponent), best run per budget",
    "isoflop": "Approach 2 (IsoFLOP): N_opt = n_coef·C^a, D_opt = d_coef·C^b, L_opt = l_coef·C^(−l_exp)",
    "parametric": "Approach 3: L(N, D) = E + A/N^α + B/D^β; N_opt ∝ C^a, D_opt ∝ C^b",
}


def add_arguments(parser) -> None:
    add_data_arguments(parser)
    parser.add_argument("--json", action="store_true", help="machine-readable output (see README)")


def family_summary(laws: FamilyLaws) -> dict:
    """JSON of one family: top-level E, A, B, alpha, beta (Approach 3) and a, b (Approach 3, else
    Approach 2), each {"value", "ci"}; every approach's estimates under "approaches"."""
    out = {"family": laws.family, "runs": laws.n_runs, "budgets": laws.n_budgets,
           "flops_model": {"K": laws.flops_model.K, "kappa": laws.flops_model.kappa},
           "bootstrap": laws.n_boot, "level": laws.level}
    for source in ("isoflop", "parametric"):  # parametric wins where both give a, b
        for key, est in laws.estimates.get(source, {}).items():
            if key in SUMMARY_KEYS:
                out[key] = {**est.as_dict(), "approach": source}
    out["approaches"] = {a: {k: e.as_dict() for k, e in est.items()} for a, est in laws.estimates.items()}
    out["skipped"] = dict(laws.skipped)
    return out


def _text(laws: FamilyLaws) -> str:
    m = laws.flops_model
    lines = [f"family {laws.family}: {laws.n_runs} runs, {laws.n_budgets} budgets; "
             f"C = {m.K:.4g}·N^(1{m.kappa:+.3f})·D; {laws.n_boot} bootstrap resamples, {laws.level:.0%} intervals"]
    for approach, est in laws.estimates.items():
        lines.append(f"  {TITLES[approach]}")
        for key, e in est.items():
            ci = f"  [{e.low:.4g}, {e.high:.4g}]" if e.low == e.low else ""
            lines.append(f"    {key:>9} = {e.value:.4g}{ci}")
    for approach, why in laws.skipped.items():
        lines.append(f"  {approach}: not fitted: {why}")
    return "\n".join(lines)


def main(args) -> int:
    runs, laws = fit_runs(args)
    report_exclusions(runs)
    ratios = loss_ratios(runs.frame) if len(laws) > 1 else None
    if args.json:
        doc = {"source": runs.source, "families": {f: family_summary(l) for f, l in laws.items()}}
        if len(laws) == 1:
            doc.update({k: v for k, v in next(iter(doc["families"].values())).items() if k in SUMMARY_KEYS})
        if ratios is not None:
            doc["loss_ratios"] = {col: {f"{c:.6g}": (None if v != v else float(v)) for c, v in ratios[col].items()}
                                  for col in ratios.columns}
        print(json.dumps(doc, indent=2))
        return 0
    print("\n\n".join(_text(l) for l in laws.values()))
    if ratios is not None:
        print("\nbest-loss ratio per budget:")
        print(ratios.to_string(float_format=lambda x: f"{x:.4f}"))
    return 0
