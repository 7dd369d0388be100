"""The verdict rules of the report's claims, as pure functions of the numbers behind them.

Each rule returns one of VERDICTS (with a phrase saying why where the reason is not the numbers alone):
"supported" where every interval is on the claimed side, "not supported" where an interval is on the other
side, "not shown" where intervals overlap or contain the threshold (or no single budget may decide alone),
"cannot be judged" where a needed study or fit is missing or not identified. The rules are printed in the
report (`RULES`), and tests/analysis/test_verdicts.py flips each rule's input.
"""

from __future__ import annotations

from analysis.bootstrap import Estimate
from analysis.heldout import HeldOut, LeaveOneOut
from analysis.ratios import Ratio

SUPPORTED, NOT_SUPPORTED, NOT_SHOWN, CANNOT = "supported", "not supported", "not shown", "cannot be judged"
VERDICTS = (SUPPORTED, NOT_SUPPORTED, NOT_SHOWN, CANNOT)
CLOSED = 0.05  # claim 1: the gap is closed when the augmented baseline's final loss is not shown to exceed by more

RULES = {
    "better": "better at every budget: supported when every ratio's interval lies below 1 (at every budget the "
              "two families can be compared), not supported when one lies above 1, not shown otherwise",
    "power": "power law in compute, per family: supported when the exponent's interval lies above 0, L(C) "
             "fitted without the largest budget predicts that budget's best loss inside its interval, and no "
             "single budget decides the law (leaving out any one budget keeps the exponent inside its "
             "interval); not supported when the interval lies below 0 or the held-out prediction misses, and "
             "no single budget decides; not shown otherwise (a single budget, e.g. the only one at another "
             "batch size, cannot decide alone)",
    "split": "the compute-optimal split differs: per approach and baseline, the difference a(equivariant) − "
             "a(baseline) of the exponents of N_opt ∝ C^a with its interval from paired bootstrap resamples (draw i "
             "of one family minus draw i of the other); supported when every difference that is identified has an "
             "interval excluding 0, not shown when one contains 0",
    "efficiency": "more data-efficient: supported when every small-size ratio's interval lies below 1, not "
                  "supported when one lies above 1",
    "closed": f"the gap closes: supported at a size where the interval's lower end is ≤ {1 + CLOSED:g} (the "
              f"augmented baseline is not shown to be more than {CLOSED:.0%} worse), not supported where it is above",
}


def combine(statuses: list[str]) -> str:
    """One verdict from several: not supported if any is, supported if all are, else not shown (cannot be
    judged when none could be judged)."""
    if not statuses:
        return CANNOT
    if NOT_SUPPORTED in statuses:
        return NOT_SUPPORTED
    if all(s == SUPPORTED for s in statuses):
        return SUPPORTED
    return NOT_SHOWN if NOT_SHOWN in statuses or SUPPORTED in statuses else CANNOT


def better_everywhere(ratios: list[Ratio]) -> tuple[str, str]:
    """Numerator better than the denominator at every budget (RULES["better"]) and a note (k of n budgets)."""
    compared = [r for r in ratios if not r.outside]
    if not compared:
        return CANNOT, "no budget where both families can be compared"
    v = [r.verdict() for r in compared]
    skipped = len(ratios) - len(compared)
    where = f" (compared at {len(compared)} of {len(ratios)} budgets)" if skipped else ""
    if "higher" in v:
        return NOT_SUPPORTED, f"worse at {v.count('higher')} of {len(compared)} budgets{where}"
    if all(x == "lower" for x in v):
        return SUPPORTED, f"better at all {len(compared)} budgets{where}"
    return NOT_SHOWN, f"not shown better at {v.count('undecided')} of {len(compared)} budgets{where}"


def power_law(exponent: Estimate | None, held: HeldOut | None, lobo: LeaveOneOut | None) -> tuple[str, str]:
    """One family's L ∝ C^(−exponent) (RULES["power"]) and why, in words."""
    if exponent is None or exponent.problem or not exponent.has_interval:
        return CANNOT, "the exponent has no interval" + (f" ({exponent.problem})" if exponent and exponent.problem else "")
    trend = "falls" if exponent.low > 0 else "rises" if exponent.high < 0 else "undecided"
    heldout = None if held is None or held.inside is None else held.inside
    decisive = () if lobo is None or lobo.problem else lobo.decisive
    if held is None or heldout is None or lobo is None or lobo.problem:
        why = (held.problem or held.predicted.problem or "no interval") if held is not None and heldout is None else (
            lobo.problem if lobo is not None and lobo.problem else "")
        if trend == "rises" and not decisive:
            return NOT_SUPPORTED, "the loss rises with compute"
        return CANNOT, f"the checks cannot be made ({why})"
    if decisive:
        return NOT_SHOWN, "decided by a single budget: " + ", ".join(f"{b:.3g}" for b in decisive)
    if trend == "rises" or not heldout:
        return NOT_SUPPORTED, "the loss rises with compute" if trend == "rises" else "the held-out prediction misses"
    if trend == "falls":
        return SUPPORTED, ""
    return NOT_SHOWN, "the exponent's interval contains 0"


def split_differs(a: dict[str, Estimate | None]) -> tuple[str, str]:
    """Two families' allocation exponents a (RULES["split"] for one approach): (status, why)."""
    missing = [f for f, e in a.items() if e is None or e.problem or not e.has_interval]
    if missing:
        return CANNOT, "a not identified for " + ", ".join(missing)
    (f, g), (h, k) = a.items()
    disjoint = g.high < k.low or k.high < g.low
    return (SUPPORTED, "disjoint intervals") if disjoint else (NOT_SHOWN, "overlapping intervals: no difference shown")


def smaller_everywhere(ratios: list[Ratio]) -> str:
    """RULES["efficiency"] over the ratios at the small sizes."""
    v = [r.verdict() for r in ratios]
    if not v:
        return CANNOT
    return NOT_SUPPORTED if "higher" in v else SUPPORTED if all(x == "lower" for x in v) else NOT_SHOWN


def gap_closed(e: Estimate) -> str:
    """RULES["closed"] at one size."""
    if e.problem:
        return CANNOT
    if not e.has_interval:
        return NOT_SHOWN
    return SUPPORTED if e.low <= 1 + CLOSED else NOT_SUPPORTED


def difference_differs(diff: Estimate | None) -> tuple[str, str]:
    """RULES["split"] on one difference a(equivariant) − a(baseline): (status, why)."""
    if diff is None or diff.problem or not diff.has_interval:
        return CANNOT, "the difference is not identified" + (f" ({diff.problem})" if diff and diff.problem else "")
    if diff.low > 0 or diff.high < 0:
        return SUPPORTED, "its interval excludes 0"
    return NOT_SHOWN, "its interval contains 0: no difference shown"
