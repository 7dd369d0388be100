"""The three claims of the report, judged for the families the claims name (`schema.ClaimFamilies`: which
family is the equivariant one, which are its baselines, which baseline is augmented), on one compute axis.

`analyse_compute` gathers what claims 2 and 3 need on one axis (ratios, held-out check, leave-one-budget-out
exponents, the allocation table); `claim1`, `claim2`, `claim3` turn numbers into a `Verdict` by the rules of
`analysis.verdicts`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from analysis import axes as X
from analysis.api import StudyFit
from analysis.bootstrap import Estimate, estimate
from analysis.data_efficiency import DataAnalysis
from analysis.export import allocation_table
from analysis.heldout import HeldOut, LeaveOneOut, held_out, leave_one_budget_out
from analysis.points import Points
from analysis.ratios import Ratio, best_ratios, frontier_ratios
from analysis.replicates import LrLaw, SeedSpread, fit_lr_law, seed_spread
from analysis.verdicts import (CANNOT, CLOSED, NOT_SHOWN, NOT_SUPPORTED, NOT_TESTED, SUPPORTED,  # noqa: F401
                               better_everywhere, claim1_status, combine, difference_differs, gap_closes,
                               more_efficient, over_sizes, power_law, split_differs)
from study.errors import EquiscaleError
from study.schema import ClaimFamilies

HOW_COMPUTE = ("run a compute study (`equiscale run studies/cpu.toml --storage URL`, or any study file without "
               "`kind = \"data\"`) and give its storage with another `--storage`")
HOW_DATA = ("run a data study (`equiscale run studies/data.toml --storage URL`, or any study file with "
            "`kind = \"data\"` and a `[data_study]` section) and give its storage with another `--storage`")
HOW_NAMES = "name them with `--equivariant F --baselines F1,F2` or the study file's claims"


def claim_texts(c: ClaimFamilies) -> dict[int, str]:
    aug = c.augmented or "an augmented baseline"
    return {
        1: f"equivariance ({c.equivariant}) improves data efficiency over {c.plain}, but a non-equivariant model "
           f"trained with data augmentation ({aug}) closes the gap given enough epochs",
        2: f"loss scales with compute as a power law, and the equivariant model ({c.equivariant}) is better than "
           f"{', '.join(c.baselines) or 'its baselines'} at every budget",
        3: f"the compute-optimal split between model size and training length differs between {c.equivariant} "
           f"and each of {', '.join(c.baselines) or c.plain}",
    }


@dataclass(frozen=True)
class Verdict:
    claim: int
    status: str
    text: str  # the numbers behind the status
    parts: dict[str, tuple[str, str]] = field(default_factory=dict)  # sub-verdict name -> (status, cell text)


def num(x: float, digits: int = 4) -> str:
    """x with `digits` significant digits; '—' for a missing value (never 'nan')."""
    return f"{x:.{digits}g}" if x is not None and np.isfinite(x) else "—"


def est(e: Estimate, digits: int = 4) -> str:
    """'v [low, high]', 'v' without an interval, or 'not identified: why'."""
    if e.problem:
        return f"not identified: {e.problem}"
    if not np.isfinite(e.value):
        return "not identified: no finite value"
    return num(e.value, digits) + (f" [{num(e.low, digits)}, {num(e.high, digits)}]" if e.has_interval else "")


def ratio_phrase(r: Ratio, where: str) -> str:
    if r.outside:
        return f"no ratio at {where} ({r.outside})"
    why = r.why_no_interval()
    return f"{est(r.estimate, 3)} at {where}" + (f" ({why})" if why else "")


# --- compute studies on one axis -------------------------------------------------------------------------

@dataclass
class ComputeAnalysis:
    fit: StudyFit
    claims: ClaimFamilies
    ratios: dict[str, list[Ratio]]  # baseline -> equivariant ÷ baseline per budget
    heldout: dict[str, HeldOut]
    lobo: dict[str, LeaveOneOut]
    allocation: pd.DataFrame | None
    allocation_problem: str = ""
    spread: dict[str, list[SeedSpread]] = field(default_factory=dict)  # family -> seed spread per budget
    lr: dict[str, LrLaw] = field(default_factory=dict)                # family -> lr_opt per budget and ∝ C^γ

    @property
    def axis(self) -> str:
        return self.fit.runs.axis


def _default_budgets(fit: StudyFit) -> list[float]:
    """The trained budgets; on another axis, each stored budget's compute (median over the families)."""
    frame = fit.runs.frame
    if fit.runs.axis == X.EXECUTED:
        return sorted(frame["budget"].unique())
    by = frame.groupby("budget")["compute"].median()
    return sorted(float(v) for v in by.to_numpy())


def analyse_compute(fit: StudyFit, claims: ClaimFamilies, *, budgets=None, n_boot: int, seed: int,
                    level: float, allocation: bool = True) -> ComputeAnalysis:
    """Ratios of the equivariant family to each baseline per budget (at equal compute on the fit's axis), the
    held-out and leave-one-budget-out checks of every family's L(C), and the allocation table."""
    frame, axis = fit.runs.frame, fit.runs.axis
    families = fit.runs.families()
    on_axis = axis != X.EXECUTED
    ratios = {}
    if claims.equivariant in families:
        for b in (b for b in claims.baselines if b in families and b != claims.equivariant):
            ratios[b] = (frontier_ratios(frame, numerator=claims.equivariant, denominator=b, n_boot=n_boot, seed=seed,
                                         level=level) if on_axis else
                         best_ratios(frame, by="budget", numerator=claims.equivariant, denominator=b, n_boot=n_boot,
                                     seed=seed, level=level))
    held, lobo = {}, {}
    for f in families:
        points = fit.laws[f].points if fit.laws[f].points is not None else Points.of(frame[frame["family"] == f])
        part = points.frame
        compute = part["compute"].to_numpy(float) if on_axis else None
        held[f] = held_out(f, n_boot=n_boot, seed=seed, level=level, points=points, on_axis=on_axis)
        exponent = fit.laws[f].estimates.get("power", {}).get("exponent", Estimate(float("nan"), problem="no L(C) fit"))
        lobo[f] = leave_one_budget_out(part["budget"], part["loss"], exponent, compute=compute)
    table, problem = None, ""
    if allocation:
        try:
            table = allocation_table(fit.laws, _default_budgets(fit) if budgets is None else list(budgets),
                                     loss_name=fit.runs.loss_name)
        except EquiscaleError as exc:
            problem = str(exc)
    spread, lr = {}, {}
    for f in families if allocation else ():   # the main axis only (the other axes' sections show claims 2 and 3)
        points = fit.laws[f].points if fit.laws[f].points is not None else Points.of(frame[frame["family"] == f])
        spread[f] = seed_spread(points)
        lr[f] = fit_lr_law(points, n_boot=n_boot, seed=seed, level=level, on_axis=on_axis)
    return ComputeAnalysis(fit, claims, ratios, held, lobo, table, problem, spread, lr)


def a_difference(laws: dict, eq: str, base: str, approach: str) -> Estimate | None:
    """a(eq) − a(base) of one approach with the interval of the paired bootstrap draws (draw i of one family
    minus draw i of the other; the families' resamples are independent); None when a family lacks the fit."""
    ea, eb = (laws[f].estimates.get(approach, {}).get("a") for f in (eq, base))
    if ea is None or eb is None:
        return None
    for f, e in ((eq, ea), (base, eb)):
        if e.problem:
            return Estimate(float("nan"), problem=f"a of {f} not identified ({e.problem})")
    da, db = (laws[f].samples.get(approach, {}).get("a", np.array([])) for f in (eq, base))
    draws = da - db if len(da) == len(db) else np.array([])
    return estimate(ea.value - eb.value, draws, level=laws[eq].level)


def _batch_note(c: ComputeAnalysis, family: str, budgets) -> str:
    """', the only budget at batch 64 (others 256)' style note for decisive budgets."""
    sizes = c.fit.runs.batch_sizes_of(family)
    notes = []
    for b in budgets:
        mine, others = sizes.get(b), {k for x, k in sizes.items() if x != b}
        if mine is not None and others and mine not in others:
            notes.append(f"{b:.3g} is the only budget at batch {mine} (others {', '.join(map(str, sorted(others)))})")
    return ("; " + "; ".join(notes)) if notes else ""


def claim2(c: ComputeAnalysis | None) -> Verdict:
    if c is None:
        return Verdict(2, CANNOT, f"no compute study was given ({HOW_COMPUTE}).")
    laws, names = c.fit.laws, c.claims
    parts, statuses, cells = [], [], {}
    unit = X.UNIT[c.axis]
    for f in sorted(laws):
        e = laws[f].estimates.get("power", {}).get("exponent")
        status, why = power_law(e, c.heldout.get(f), c.lobo.get(f))
        statuses.append(status)
        h = c.heldout[f]
        if e is None or e.problem:
            text = f"{f}: L(C) not identified ({e.problem if e is not None else laws[f].skipped.get('power', '')})"
        else:
            held = (f"held-out check not possible ({h.problem or h.predicted.problem or 'no interval'})"
                    if h.problem or h.inside is None else
                    f"predicts {num(h.predicted.value, 3)} [{num(h.predicted.low, 3)}, {num(h.predicted.high, 3)}] "
                    f"at {num(h.budget, 3)} {unit} where {num(h.measured, 3)} was measured ({h.error:+.1%}, "
                    f"{'inside' if h.inside else 'outside'} the interval)")
            lo = c.lobo[f]
            loo = ("" if lo.problem else "; exponent without each budget: "
                   + ", ".join(f"{num(e2, 3)} (without {b:.3g})" for b, e2 in lo.exponents.items()))
            text = f"{f}: L ∝ C^−{est(e, 3)}, {held}{loo}"
        batch = _batch_note(c, f, c.lobo[f].decisive) if "single budget" in why else ""
        parts.append(f"{text} → power law {status}" + (f" ({why}{batch})" if why else ""))
        cells[f"power law: {f}"] = (status, status + (f" ({why})" if why and status != SUPPORTED else ""))
    power = combine(statuses)
    if not c.ratios:
        better = CANNOT
        better_text = (f"needs compute studies of {names.equivariant} and at least one of its baselines "
                       f"({', '.join(names.baselines) or 'none named'}; {HOW_NAMES})")
        cells[f"{names.equivariant} better"] = (better, better)
    else:
        per = []
        for base, rs in c.ratios.items():
            status, note = better_everywhere(rs)
            per.append(status)
            detail = "; ".join(ratio_phrase(r, f"{num(r.at, 3)} {unit}" + (
                f" (budget {r.budget:.3g})" if c.axis != X.EXECUTED else "")) for r in rs)
            parts.append(f"{names.equivariant} ÷ {base} best loss: {detail} ({note})")
            cells[f"{names.equivariant} better than {base}"] = (status, f"{status} ({note})")
        better, better_text = combine(per), ""
    status = combine([power, better])
    summary = (f"power law in compute: {power}; {names.equivariant} better at every budget: {better}"
               + (f" ({better_text})" if better_text else ""))
    return Verdict(2, status, summary + ". " + ". ".join(parts) + ".", cells)


def claim3(c: ComputeAnalysis | None) -> Verdict:
    if c is None:
        return Verdict(3, CANNOT, f"no compute study was given ({HOW_COMPUTE}).")
    laws, names = c.fit.laws, c.claims
    eq = names.equivariant
    bases = [b for b in names.baselines if b in laws and b != eq]
    if eq not in laws or not bases:
        return Verdict(3, CANNOT, f"needs compute studies of both {eq} and {names.plain} ({HOW_NAMES}).",
                       {"a differs": (CANNOT, CANNOT)})
    parts, statuses, cells = [], [], {}
    for approach, title in (("isoflop", "Approach 2 (IsoFLOP)"), ("parametric", "Approach 3")):
        a = {f: laws[f].estimates.get(approach, {}).get("a") for f in (eq, *bases)}
        shown = "; ".join(f"{f} {est(e, 3) if e is not None else 'not fitted: ' + laws[f].skipped.get(approach, '')}"
                          for f, e in a.items())
        diffs = []
        for base in bases:
            diff = a_difference(laws, eq, base, approach)
            status, why = difference_differs(diff)
            statuses.append(status)
            text = ("not identified: " + (diff.problem if diff is not None and diff.problem else
                                          laws[base].skipped.get(approach, laws[eq].skipped.get(approach, "not fitted")))
                    if status == CANNOT else est(diff, 3))
            diffs.append(f"a({eq}) − a({base}) = {text}" + ("" if status == CANNOT else f" ({why})"))
            cells[f"a({eq}) − a({base}), {title}"] = (status, f"{text}: {status}")
        parts.append(f"{title}: a = {shown}; " + "; ".join(diffs))
    known = [s for s in statuses if s != CANNOT]
    status = CANNOT if not known else SUPPORTED if all(s == SUPPORTED for s in known) else NOT_SHOWN
    return Verdict(3, status, ". ".join(parts) + ".", cells)


# --- data studies ----------------------------------------------------------------------------------------

def _steps(n: float) -> str:
    return f"{int(n):,} steps"


def claim1(d: DataAnalysis | None, names: ClaimFamilies) -> Verdict:
    """Both halves of claim 1 from the ratios per (size, length) (RULES["efficiency"], RULES["closes"])."""
    if d is None:
        return Verdict(1, CANNOT, f"no data study was given ({HOW_DATA}).")
    if not d.small:
        return Verdict(1, CANNOT, "no training-set size shared by every family of the data studies.")
    eq, plain, aug = names.equivariant, names.plain, names.augmented
    small_text = ", ".join(map(str, d.small))
    parts, cells = [], {}
    trends = d.lengths.trends.get((plain, eq)) if plain else None
    if trends is None:
        efficiency, why = NOT_TESTED, f"needs data studies of {eq} and {plain} ({HOW_NAMES})"
        parts.append(f"data efficiency: {why}")
    else:
        last = [trends[n].last for n in d.small if n in trends]
        efficiency, why = more_efficient(last, sizes=len(trends))
        parts.append(f"{plain} ÷ {eq} best loss at the longest length of each small size: "
                     + ("; ".join(ratio_phrase(r, f"n = {n}, {_steps(r.at)}") for n, r in
                                  ((n, trends[n].last) for n in d.small if n in trends)) or "none")
                     + f" → {efficiency} ({why})")
    cells["equivariance improves data efficiency"] = (efficiency, f"{efficiency} ({why})")
    trends = d.lengths.trends.get((aug, eq)) if aug else None
    if trends is None:
        closes, why = NOT_TESTED, f"needs data studies of {aug or 'an augmented baseline'} and {eq}"
        parts.append(f"closing the gap: {why}")
    else:
        per = []
        for n in d.small:
            t = trends.get(n)
            if t is None:
                per.append(NOT_TESTED)
                parts.append(f"{aug} ÷ {eq} at n = {n}: not trained by both → {NOT_TESTED}")
                continue
            status, reason = gap_closes(t.slope, t.last.estimate, lengths=t.lengths, min_seeds=t.min_seeds)
            per.append(status)
            path = " → ".join(f"{est(r.estimate, 3)} at {_steps(r.at)}" for r in t.ratios)
            slope = "" if len(t.ratios) < 2 else f"; slope of log ratio vs log steps {est(t.slope, 3)}"
            parts.append(f"{aug} ÷ {eq} at n = {n} ({len(t.ratios)} length(s), span {num(t.span, 3)}×, "
                         f"fewest seeds {t.min_seeds}): {path}{slope} → {status} ({reason})")
        tested = sum(s not in (NOT_TESTED, CANNOT) for s in per)
        closes, why = over_sizes(per), f"{tested} of {len(per)} small sizes tested"
    cells["augmentation closes the gap"] = (closes, f"{closes} ({why})")
    compared = [p for p in d.lengths.points if p.train_size in d.small and p.family in (eq, plain, aug)]
    edges = [p for p in compared if not p.inside]
    parts.append(f"best lr strictly inside the lrs trained at {len(compared) - len(edges)} of {len(compared)} of "
                 f"these points" + (": at an edge at " + ", ".join(f"{p.family} n = {p.train_size} {_steps(p.steps)}"
                                                                   for p in edges) if edges else ""))
    summary = (f"{eq} more data-efficient than {plain}: {efficiency}; {aug or 'an augmented baseline'} closes the "
               f"gap given enough training: {closes}; judged at the small sizes n = {small_text}")
    return Verdict(1, claim1_status([efficiency, closes]), summary + ". " + ". ".join(parts) + ".", cells)
