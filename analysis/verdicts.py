"""The verdict rules of the report's claims, as pure functions of the numbers behind them.

Each rule returns one of VERDICTS (with a phrase saying why where the reason is not the numbers alone):
"supported" where every interval is on the claimed side, "not supported" where an interval is on the other
side, "not shown" where intervals overlap or contain the threshold (or no single budget may decide alone),
"cannot be judged" where a needed study or fit is missing or not identified, "not tested" (claim 1) where the
design cannot separate the effect (too few sizes, lengths or seeds). The rules are printed in the
report (`RULES`), and tests/analysis/test_verdicts.py flips each rule's input.
"""

from __future__ import annotations

from analysis.bootstrap import Estimate
from analysis.heldout import HeldOut, LeaveOneOut
from analysis.ratios import Ratio

SUPPORTED, NOT_SUPPORTED, NOT_SHOWN, CANNOT = "supported", "not supported", "not shown", "cannot be judged"
NOT_TESTED = "not tested"   # claim 1: the design cannot separate the effect (too few sizes, lengths or seeds)
VERDICTS = (SUPPORTED, NOT_SUPPORTED, NOT_SHOWN, CANNOT, NOT_TESTED)
CLOSED = 0.05  # claim 1: the gap is closed when the augmented baseline's final loss is not shown to exceed by more
MIN_SIZES = 2      # claim 1, data efficiency: training-set sizes both families trained
MIN_LENGTHS, MIN_SPAN, MIN_SEEDS = 3, 10.0, 2   # claim 1, closing the gap: per size, lengths, their span, seeds

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
    "efficiency": f"claim 1, equivariance improves data efficiency: at each small training-set size, the plain "
                  f"baseline ÷ equivariant best loss at the longest training length both trained there; supported "
                  f"when every small size's interval lies above 1, not supported when one lies below 1, not shown "
                  f"otherwise; not tested with fewer than {MIN_SIZES} sizes trained by both",
    "closes": f"claim 1, augmentation closes the gap given enough training: at each small size, the slope s of "
              f"log(augmented ÷ equivariant best loss) against log(training steps) (least squares over the lengths, "
              f"interval from the same resamples) and the ratio r at the longest length; supported when s's interval "
              f"lies below 0 and r's lower end is ≤ {1 + CLOSED:g} (not shown to exceed by more than {CLOSED:.0%}); "
              f"not supported when s's lower end is ≥ 0 and r's lower end is above {1 + CLOSED:g} (the gap neither "
              f"shrinks nor closes); not shown otherwise; not tested at a size with fewer than {MIN_LENGTHS} lengths, "
              f"lengths spanning less than {MIN_SPAN:g}×, or a best point with fewer than {MIN_SEEDS} seeds; the "
              f"half is judged over the small sizes that are tested (not tested when none is)",
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


def more_efficient(ratios: list[Ratio], *, sizes: int) -> tuple[str, str]:
    """RULES["efficiency"]: `ratios` plain ÷ equivariant at the longest length of each small size; `sizes`: how many
    sizes both families trained. (status, why)."""
    if sizes < MIN_SIZES:
        return NOT_TESTED, f"{sizes} training-set size(s) trained by both (needs {MIN_SIZES})"
    if not ratios:
        return NOT_TESTED, "no small size trained by both"
    v = [r.verdict() for r in ratios]
    if "lower" in v:
        return NOT_SUPPORTED, f"the baseline is better at {v.count('lower')} of {len(v)} small sizes"
    if all(x == "higher" for x in v):
        return SUPPORTED, f"the equivariant family is better at all {len(v)} small sizes"
    return NOT_SHOWN, f"intervals contain 1 (or no interval) at {v.count('undecided')} of {len(v)} small sizes"


def closes_testable(lengths, min_seeds: int) -> str:
    """'' when one size's design can test RULES["closes"], else why not."""
    lengths = sorted(lengths)
    if len(lengths) < MIN_LENGTHS:
        return f"{len(lengths)} training length(s) (needs {MIN_LENGTHS})"
    if lengths[-1] / lengths[0] < MIN_SPAN:
        return f"lengths span {lengths[-1] / lengths[0]:.3g}× (needs {MIN_SPAN:g}×)"
    if min_seeds < MIN_SEEDS:
        return f"a best point has {min_seeds} seed(s) (needs {MIN_SEEDS})"
    return ""


def gap_closes(slope: Estimate, last: Estimate, *, lengths, min_seeds: int) -> tuple[str, str]:
    """RULES["closes"] at one size: `slope` of log(augmented ÷ equivariant) vs log(steps), `last` the ratio at the
    longest length. (status, why)."""
    untestable = closes_testable(lengths, min_seeds)
    if untestable:
        return NOT_TESTED, untestable
    if not slope.has_interval or not last.has_interval:
        return NOT_SHOWN, "no interval on the slope or the last ratio"
    closed = last.low <= 1 + CLOSED
    if slope.high < 0 and closed:
        return SUPPORTED, "the gap shrinks with length and is closed at the longest"
    if slope.low >= 0 and not closed:
        return NOT_SUPPORTED, "the gap does not shrink with length and stays open at the longest"
    return NOT_SHOWN, ("the gap shrinks but stays open at the longest length" if slope.high < 0 else
                       "closed at the longest length but not shown to shrink" if closed else
                       "the slope's interval contains 0 and the gap stays open")


def over_sizes(statuses: list[str]) -> str:
    """One claim-1 half from its sizes: the tested sizes combined (`combine`); not tested when none is tested."""
    tested = [s for s in statuses if s not in (NOT_TESTED, CANNOT)]
    return combine(tested) if tested else NOT_TESTED


def claim1_status(halves: list[str]) -> str:
    """Claim 1 from its two halves: not supported if one is, supported if both are, not tested if neither could
    be tested, else not shown."""
    if all(h in (NOT_TESTED, CANNOT) for h in halves):
        return NOT_TESTED if NOT_TESTED in halves else CANNOT
    return combine([CANNOT if h == NOT_TESTED else h for h in halves])


def difference_differs(diff: Estimate | None) -> tuple[str, str]:
    """RULES["split"] on one difference a(equivariant) − a(baseline): (status, why)."""
    if diff is None or diff.problem or not diff.has_interval:
        return CANNOT, "the difference is not identified" + (f" ({diff.problem})" if diff and diff.problem else "")
    if diff.low > 0 or diff.high < 0:
        return SUPPORTED, "its interval excludes 0"
    return NOT_SHOWN, "its interval contains 0: no difference shown"
