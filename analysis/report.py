"""The report of a study: compute laws, allocation, loss ratios, held-out check, data efficiency, equivariance
error and a verdict with numbers on each of the three claims, as one `Document` plus its files.

Numbers are never printed as nan: a quantity that is not identified says so and why (`Estimate.problem`),
a compute-optimal size outside the trained runs carries '*' and an extrapolation note (`analysis.export`).
A verdict is one of VERDICTS: "not shown" where intervals overlap (or contain 1), "cannot be judged" where
a needed fit or study is missing.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from analysis import plots
from analysis.api import StudyFit
from analysis.bootstrap import Estimate
from analysis.data_efficiency import DataAnalysis
from analysis.document import Bullets, Document, Figure, Heading, Paragraph, Table, to_html, to_markdown
from analysis.export import allocation_table, render, table_cells
from analysis.heldout import HeldOut, held_out
from analysis.ratios import Ratio, best_ratios
from study.errors import EquiscaleError

EQUIVARIANT, PLAIN, AUGMENTED = "gatr", "transformer", "transformer-aug"
SUPPORTED, NOT_SUPPORTED, NOT_SHOWN, CANNOT = "supported", "not supported", "not shown", "cannot be judged"
VERDICTS = (SUPPORTED, NOT_SUPPORTED, NOT_SHOWN, CANNOT)
CLOSED = 0.05  # claim 1: the gap is closed when transformer-aug's final loss is not shown to exceed GATr's by more
RATIO_PAIRS = ((EQUIVARIANT, PLAIN), (AUGMENTED, EQUIVARIANT))  # data studies: final best-loss ratios per size
GAP_PAIRS = ((AUGMENTED, EQUIVARIANT), (PLAIN, EQUIVARIANT))  # data studies: learning-curve ratios vs epochs
CLAIMS = {
    1: "equivariance improves data efficiency, but a non-equivariant model trained with data augmentation "
       "closes the gap given enough epochs",
    2: "loss scales with compute as a power law, and the equivariant model (gatr) is better at every budget",
    3: "the compute-optimal split between model size and training length differs between gatr and transformer",
}
HOW_COMPUTE = ("run a compute study (`equiscale run studies/cpu.toml --storage URL`, or any study file without "
               "`kind = \"data\"`) and give its storage with another `--storage`")
HOW_DATA = ("run a data study (`equiscale run studies/data.toml --storage URL`, or any study file with "
            "`kind = \"data\"` and a `[data_study]` section) and give its storage with another `--storage`")


@dataclass(frozen=True)
class Verdict:
    claim: int
    status: str
    text: str  # the numbers behind the status


@dataclass
class Report:
    """The document, the allocation table as CSV (None without compute studies) and the verdicts."""

    document: Document
    allocation_csv: str | None
    verdicts: dict[int, Verdict]
    heldout: dict[str, HeldOut] = field(default_factory=dict)

    def files(self) -> dict[str, bytes]:
        """Relative path -> content of every file the report consists of."""
        out = {"report.md": to_markdown(self.document).encode(), "report.html": to_html(self.document).encode()}
        if self.allocation_csv is not None:
            out["allocation.csv"] = self.allocation_csv.encode()
        out.update({f"figures/{name}.png": png for name, png in self.document.figures().items()})
        return out


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


def _png(fig) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    return buffer.getvalue()


def _combine(statuses: list[str]) -> str:
    if not statuses:
        return CANNOT
    if NOT_SUPPORTED in statuses:
        return NOT_SUPPORTED
    if all(s == SUPPORTED for s in statuses):
        return SUPPORTED
    return NOT_SHOWN if NOT_SHOWN in statuses or SUPPORTED in statuses else CANNOT


def _ratio_phrase(r: Ratio, where: str) -> str:
    why = r.why_no_interval()
    return f"{est(r.estimate, 3)} at {where}" + (f" ({why})" if why else "")


def _ratio_cell(r: Ratio) -> str:
    why = r.why_no_interval()
    return est(r.estimate) + (f" ({why})" if why else "")


# --- compute studies -------------------------------------------------------------------------------------

@dataclass
class ComputeAnalysis:
    fit: StudyFit
    ratios: dict[str, list[Ratio]]  # baseline family -> gatr ÷ baseline per budget
    heldout: dict[str, HeldOut]
    allocation: pd.DataFrame | None
    allocation_problem: str = ""


def analyse_compute(fit: StudyFit, *, budgets=None, n_boot: int, seed: int, level: float) -> ComputeAnalysis:
    """Ratios of GATr to every other family per budget, the held-out check and the allocation table."""
    frame = fit.runs.frame
    families = fit.runs.families()
    ratios = {}
    if EQUIVARIANT in families:
        ratios = {b: best_ratios(frame, by="budget", numerator=EQUIVARIANT, denominator=b, n_boot=n_boot,
                                 seed=seed, level=level) for b in families if b != EQUIVARIANT}
    held = {f: held_out(f, frame.loc[frame["family"] == f, "budget"], frame.loc[frame["family"] == f, "loss"],
                        n_boot=n_boot, seed=seed, level=level) for f in families}
    budgets = sorted(frame["budget"].unique()) if budgets is None else list(budgets)
    table, problem = None, ""
    try:
        table = allocation_table(fit.laws, budgets)
    except EquiscaleError as exc:  # no family has an allocation law: the section says why
        problem = str(exc)
    return ComputeAnalysis(fit, ratios, held, table, problem)


def _compute_sections(doc: Document, c: ComputeAnalysis, *, loss_label: str, level: float) -> None:
    """Loss vs compute, ratios, held-out check, IsoFLOP curves, allocation exponents and table."""
    for section in (_loss_section, _ratio_section, _heldout_section, _isoflop_section, _allocation_section):
        section(doc, c, loss_label=loss_label, pct=f"{level:.0%}")


def _context(c: ComputeAnalysis):
    return c.fit.runs.frame, c.fit.laws, c.fit.runs.families()


def _loss_section(doc: Document, c: ComputeAnalysis, *, loss_label: str, pct: str) -> None:
    """Loss vs compute: figure, L(C) per family, best loss per budget."""
    frame, laws, families = _context(c)
    doc.add(Heading("Loss vs compute"),
            Figure("loss_vs_compute", _png(plots.loss_vs_compute(frame, laws, loss_label=loss_label)),
                   f"Loss vs training compute: every run (faint), the best run per budget, L(C) = coef·C^(−exponent) "
                   f"through the best runs with its {pct} bootstrap band, and E + coef·C^(−exponent) (dashed) "
                   f"where identified."))
    rows = []
    for f in families:
        law = laws[f]
        power = law.estimates.get("power", {})
        irr = law.estimates.get("power_irreducible", {})
        rows.append((f, str(law.n_budgets), est(power["exponent"]) if "exponent" in power else
                     "not identified: " + law.skipped.get("power", "not fitted"),
                     est(power["coef"]) if "coef" in power else "—",
                     est(irr["E"]) if "E" in irr else "not identified: "
                     + law.skipped.get("power_irreducible", law.skipped.get("power", "not fitted"))))
    doc.add(Table(("family", "budgets", "exponent of L ∝ C^−exponent", "coef", "irreducible E of L = E + coef·C^−exponent"),
                  tuple(rows)))
    budgets = sorted(frame["budget"].unique())
    best = frame.loc[frame.groupby(["family", "budget"])["loss"].idxmin()].set_index(["family", "budget"])
    rows = []
    for b in budgets:
        cells = [num(b, 3)]
        for f in families:
            cells.append(f"{num(best.at[(f, b), 'loss'])} (N = {num(best.at[(f, b), 'params'], 3)})"
                         if (f, b) in best.index else "—")
        rows.append(tuple(cells))
    doc.add(Paragraph(f"Best {loss_label} per budget (the run with the lowest loss; N its parameters):"),
            Table(("budget C [FLOP]", *families), tuple(rows)))


def _ratio_section(doc: Document, c: ComputeAnalysis, *, loss_label: str, pct: str) -> None:
    """GATr ÷ every other family per budget, with intervals."""
    frame, laws, families = _context(c)
    budgets = sorted(frame["budget"].unique())
    doc.add(Heading("Loss ratio per budget"))
    if not c.ratios:
        doc.add(Paragraph(f"No ratio: it needs compute studies of `{EQUIVARIANT}` and of at least one other family."))
    else:
        bases = list(c.ratios)
        by_budget = {b: {base: r for base in bases for r in c.ratios[base] if r.at == b} for b in budgets}
        rows = [(num(b, 3), *[_ratio_cell(by_budget[b][base]) if base in by_budget[b] else "—" for base in bases])
                for b in budgets]
        doc.add(Paragraph(f"Best loss of {EQUIVARIANT} ÷ best loss of each other family at every budget, with {pct} "
                          f"bootstrap intervals (runs resampled within each budget and family: the interval "
                          f"reflects which run is best, not seed-to-seed noise of one run). Below 1: "
                          f"{EQUIVARIANT} is better."),
                Table(("budget C [FLOP]", *[f"{EQUIVARIANT} ÷ {base}" for base in bases]), tuple(rows)))


def _heldout_section(doc: Document, c: ComputeAnalysis, *, loss_label: str, pct: str) -> None:
    """L(C) without the largest budget against that budget's best loss."""
    frame, laws, families = _context(c)
    doc.add(Heading("Held-out check"),
            Paragraph(f"L(C) = coef·C^(−exponent) fitted to every budget but the largest predicts the largest "
                      f"budget's best loss ({pct} interval from the bootstrap of that fit); error = predicted ÷ "
                      f"measured − 1."))
    rows = []
    for f in families:
        h = c.heldout[f]
        if h.problem or h.predicted.problem:
            rows.append((f, num(h.budget, 3), ", ".join(num(b, 3) for b in h.fitted_budgets) or "—", num(h.measured),
                         f"not identified: {h.problem or h.predicted.problem}", "—"))
            continue
        inside = {True: "inside", False: "outside", None: "no interval"}[h.inside]
        rows.append((f, num(h.budget, 3), ", ".join(num(b, 3) for b in h.fitted_budgets), num(h.measured),
                     est(h.predicted), f"{h.error:+.1%} (measured {inside} the interval)"))
    doc.add(Table(("family", "held-out budget C [FLOP]", "fitted on budgets", "measured best loss", "predicted",
                   "error"), tuple(rows)))


def _isoflop_section(doc: Document, c: ComputeAnalysis, *, loss_label: str, pct: str) -> None:
    """IsoFLOP figure and which budgets bracket a minimum."""
    frame, laws, families = _context(c)
    doc.add(Heading("IsoFLOP curves"),
            Figure("isoflop", _png(plots.isoflop_curves(frame, laws, loss_label=loss_label)),
                   "Loss vs parameters at each budget (colour), with the parabola in ln N fitted near each "
                   "budget's minimum and its vertex (×) where the parabola brackets a minimum."))
    items = []
    for f in families:
        iso = laws[f].isoflop
        if iso is None:
            items.append(f"{f}: not identified: {laws[f].skipped.get('isoflop', 'not fitted')}")
            continue
        kept = ", ".join(num(k.budget, 3) for k in iso.curves)
        left = "; ".join(iso.rejected.values())
        items.append(f"{f}: minimum bracketed at budgets {kept}" + (f"; left out: {left}" if left else ""))
    doc.add(Bullets(tuple(items)))


def _allocation_section(doc: Document, c: ComputeAnalysis, *, loss_label: str, pct: str) -> None:
    """Allocation figure, exponents a and b, IsoFLOP minima and the allocation table."""
    frame, laws, families = _context(c)
    doc.add(Heading("Compute-optimal parameters and samples"),
            Figure("allocation", _png(plots.allocation(frame, laws)),
                   f"N_opt and D_opt vs compute: IsoFLOP minima and their power laws (Approach 2, dashed) and "
                   f"Approach 3 (L(N, D) = E + A/N^α + B/D^β) with {pct} bands; dotted where outside the trained "
                   f"sizes (extrapolation)."))
    rows = []
    for f in families:
        law = laws[f]
        m = law.flops_model
        model = f"C = {m.K:.4g}·N^(1{m.kappa:+.3f})·D"
        for approach, title in (("isoflop", "Approach 2 (IsoFLOP)"), ("parametric", "Approach 3 (L(N, D))")):
            e = law.estimates.get(approach)
            pair = (e["a"], e["b"]) if e is not None else None
            whys = ([law.skipped.get(approach, "not fitted")] if pair is None else
                    list(dict.fromkeys(x.problem for x in pair if x.problem)))
            cells = ("n/a", "n/a") if pair is None else tuple("n/a" if x.problem else est(x) for x in pair)
            rows.append((f, title, *cells, model, "; ".join(f"not identified: {w}" for w in whys)))
    doc.add(Paragraph("Exponents of N_opt ∝ C^a and D_opt ∝ C^b with their bootstrap intervals ('n/a': not "
                      "identified, the note says why), and each family's fitted FLOP model."),
            Table(("family", "approach", "a (N_opt ∝ C^a)", "b (D_opt ∝ C^b)", "FLOP model", "note"), tuple(rows)))
    rows = [(f, num(k.budget, 3), num(k.n_opt), num(k.d_opt), num(k.loss_opt), f"{num(k.n_low, 3)}–{num(k.n_high, 3)}")
            for f in families if laws[f].isoflop is not None for k in laws[f].isoflop.curves]
    if rows:
        doc.add(Paragraph("IsoFLOP minima (each inside the sizes trained at its budget):"),
                Table(("family", "budget C [FLOP]", "N_opt", "D_opt", "loss at minimum", "N fitted"), tuple(rows)))

    doc.add(Heading("Allocation table"))
    if c.allocation is None:
        doc.add(Paragraph(f"No allocation table: {c.allocation_problem}"))
    else:
        heads, cells = table_cells(c.allocation)
        doc.add(Paragraph(f"Compute-optimal N, D, steps and predicted loss per family, budget and approach, with "
                          f"{pct} intervals (also `allocation.csv`). '*': outside the trained runs (extrapolation); "
                          f"'n/a': not identified (the note says why)."),
                Table(tuple(heads), tuple(tuple(r) for r in cells)))


def _claim2(c: ComputeAnalysis | None) -> Verdict:
    if c is None:
        return Verdict(2, CANNOT, f"no compute study was given ({HOW_COMPUTE}).")
    laws = c.fit.laws
    parts, statuses = [], []
    for f in sorted(laws):
        e = laws[f].estimates.get("power", {}).get("exponent")
        if e is None or e.problem:
            statuses.append(CANNOT)
            parts.append(f"{f}: L(C) not identified ({e.problem if e is not None else laws[f].skipped.get('power', '')})")
            continue
        if e.has_interval and e.high < 0:
            statuses.append(NOT_SUPPORTED)
        elif e.has_interval and e.low > 0:
            statuses.append(SUPPORTED)
        else:
            statuses.append(NOT_SHOWN)
        h = c.heldout[f]
        if h.problem or h.inside is None:
            statuses.append(CANNOT)
            held = f"held-out check not possible ({h.problem or h.predicted.problem or 'no interval'})"
        else:
            statuses.append(SUPPORTED if h.inside else NOT_SUPPORTED)
            held = (f"predicts {num(h.predicted.value, 3)} [{num(h.predicted.low, 3)}, {num(h.predicted.high, 3)}] "
                    f"at {num(h.budget, 3)} where {num(h.measured, 3)} was measured ({h.error:+.1%}, "
                    f"{'inside' if h.inside else 'outside'} the interval)")
        parts.append(f"{f}: L ∝ C^−{est(e, 3)}, {held}")
    power = _combine(statuses)
    if not c.ratios:
        better, better_text = CANNOT, f"needs compute studies of {EQUIVARIANT} and another family"
    else:
        per = []
        for base, rs in c.ratios.items():
            v = [r.verdict() for r in rs]
            higher = [r for r in rs if r.verdict() == "higher"]
            undecided = [r for r in rs if r.verdict() == "undecided"]
            status = NOT_SUPPORTED if higher else SUPPORTED if all(x == "lower" for x in v) and v else NOT_SHOWN
            per.append(status)
            detail = "; ".join(_ratio_phrase(r, num(r.at, 3)) for r in rs)
            note = (f"worse at {len(higher)} of {len(rs)} budgets" if higher else
                    f"not shown better at {len(undecided)} of {len(rs)} budgets" if undecided else
                    f"better at all {len(rs)} budgets")
            parts.append(f"{EQUIVARIANT} ÷ {base} best loss: {detail} ({note})")
        better = _combine(per)
        better_text = ""
    status = _combine([power, better])
    summary = (f"power law in compute: {power}; {EQUIVARIANT} better at every budget: {better}"
               + (f" ({better_text})" if better_text else ""))
    return Verdict(2, status, summary + ". " + ". ".join(parts) + ".")


def _claim3(c: ComputeAnalysis | None) -> Verdict:
    if c is None:
        return Verdict(3, CANNOT, f"no compute study was given ({HOW_COMPUTE}).")
    laws = c.fit.laws
    if EQUIVARIANT not in laws or PLAIN not in laws:
        return Verdict(3, CANNOT, f"needs compute studies of both {EQUIVARIANT} and {PLAIN}.")
    parts, statuses = [], []
    for approach, title in (("isoflop", "Approach 2 (IsoFLOP)"), ("parametric", "Approach 3")):
        a = {f: laws[f].estimates.get(approach, {}).get("a") for f in (EQUIVARIANT, PLAIN)}
        missing = {f: (e.problem if e is not None else laws[f].skipped.get(approach, "not fitted"))
                   for f, e in a.items() if e is None or e.problem or not e.has_interval}
        if missing:
            statuses.append(CANNOT)
            parts.append(f"{title}: a not identified for " + "; ".join(
                f"{f} ({why or 'no bootstrap interval'})" for f, why in missing.items()))
            continue
        g, t = a[EQUIVARIANT], a[PLAIN]
        disjoint = g.high < t.low or t.high < g.low
        statuses.append(SUPPORTED if disjoint else NOT_SHOWN)
        parts.append(f"{title}: a = {est(g, 3)} for {EQUIVARIANT} vs {est(t, 3)} for {PLAIN} "
                     f"({'disjoint intervals' if disjoint else 'overlapping intervals: no difference shown'})")
    known = [s for s in statuses if s != CANNOT]
    status = CANNOT if not known else SUPPORTED if all(s == SUPPORTED for s in known) else NOT_SHOWN
    return Verdict(3, status, ". ".join(parts) + ".")


# --- data studies ----------------------------------------------------------------------------------------

def _data_sections(doc: Document, d: DataAnalysis, *, loss_label: str, level: float) -> None:
    pct = f"{level:.0%}"
    frame, families = d.runs.frame, d.runs.families()
    gaps = [g for curves in d.gaps.values() for g in curves if g.train_size in d.small]
    doc.add(Heading("Data efficiency"),
            Figure("data_efficiency", _png(plots.data_efficiency(frame, d.laws, gaps, loss_label=loss_label)),
                   f"Left: loss vs training-set size (every trial faint, the best trial per size, "
                   f"L = coef·n^(−α) with its {pct} bootstrap band). Right: "
                   + ("loss ratios on the probe subset vs epochs at the small sizes ("
                      + "; ".join(f"{a} ÷ {b}" for a, b in d.gaps) + ")."
                      if gaps else "no gap curve (needs learning curves of two families at a small size).")))
    rows = []
    for f in families:
        law = d.laws[f]
        if law.problem:
            rows.append((f, str(len(law.sizes)), f"not identified: {law.problem}", "—"))
        else:
            rows.append((f, str(len(law.sizes)), est(law.estimates["alpha"]), est(law.estimates["coef"])))
    doc.add(Paragraph(f"L(n) = coef·n^(−α) through the best trial (lowest loss over learning rates) per training-set "
                      f"size n, least squares in log-log; {pct} intervals resample the sizes and, within each, "
                      f"its trials."),
            Table(("family", "sizes", "α", "coef"), tuple(rows)))
    best = d.best.set_index(["family", "train_size"])
    sizes = sorted(frame["train_size"].unique())
    rows = []
    for n in sizes:
        cells = [str(int(n))]
        for f in families:
            if (f, n) in best.index:
                row = best.loc[(f, n)]
                cells.append(f"{num(row['loss'])} ({num(row['epochs'], 3)} epochs, lr {num(row['lr'], 3)})")
            else:
                cells.append("—")
        rows.append(tuple(cells))
    doc.add(Paragraph(f"Best {loss_label} per training-set size (its epochs and learning rate):"),
            Table(("n [scenes]", *families), tuple(rows)))
    if d.ratios:
        pairs = list(d.ratios)
        per = {p: {r.at: r for r in d.ratios[p]} for p in pairs}
        rows = [(str(int(n)) + (" (small)" if n in d.small else ""),
                 *[_ratio_cell(per[p][n]) if n in per[p] else "—" for p in pairs]) for n in sizes]
        doc.add(Paragraph(f"Final best-loss ratios per size with {pct} intervals (trials resampled within each "
                          f"size); 'small': the smaller half of the sizes, where claim 1 is judged."),
                Table(("n [scenes]", *[f"{a} ÷ {b}" for a, b in pairs]), tuple(rows)))
    for (a, b), curves in d.gaps.items():
        small = [g for g in curves if g.train_size in d.small]
        if not small:
            continue
        rows = [(str(g.train_size), str(g.epochs.size), f"{num(g.ratio[0], 3)} (epoch {num(g.epochs[0], 4)})",
                 f"{num(g.ratio[-1], 3)} (epoch {num(g.epochs[-1], 4)})",
                 ", ".join(f"{num(e, 4)}: {num(r, 3)}" for e, r in zip(g.epochs, g.ratio))
                 + (" (interpolated)" if g.interpolated else "")) for g in small]
        doc.add(Paragraph(f"Gap vs epochs at the small sizes: {a} ÷ {b} loss on the fixed probe subset of the "
                          f"validation split, from the learning curve of each study's best trial, at the epochs both "
                          f"recorded ('interpolated': none in common, so {b}'s curve was interpolated in log epoch "
                          f"and log loss onto {a}'s epochs)."),
                Table(("n [scenes]", "epochs compared", "first", "last", "epoch: ratio"), tuple(rows)))


def _claim1(d: DataAnalysis | None) -> Verdict:
    if d is None:
        return Verdict(1, CANNOT, f"no data study was given ({HOW_DATA}).")
    if not d.small:
        return Verdict(1, CANNOT, "no training-set size shared by every family of the data studies.")
    parts, statuses = [], []
    small_text = ", ".join(map(str, d.small))  # statuses[0]: data efficiency, statuses[1]: closing the gap
    efficiency = d.ratios.get((EQUIVARIANT, PLAIN))
    if efficiency is None:
        statuses.append(CANNOT)
        parts.append(f"data efficiency: needs data studies of {EQUIVARIANT} and {PLAIN}")
    else:
        rs = [r for r in efficiency if r.at in d.small]
        v = [r.verdict() for r in rs]
        statuses.append(NOT_SUPPORTED if "higher" in v else SUPPORTED if v and all(x == "lower" for x in v)
                        else NOT_SHOWN if v else CANNOT)
        parts.append(f"{EQUIVARIANT} ÷ {PLAIN} final best loss at the small sizes: "
                     + "; ".join(_ratio_phrase(r, f"n = {int(r.at)}") for r in rs))
    closing = d.ratios.get((AUGMENTED, EQUIVARIANT))
    if closing is None:
        statuses.append(CANNOT)
        parts.append(f"closing the gap: needs data studies of {AUGMENTED} and {EQUIVARIANT}")
    else:
        gaps = {g.train_size: g for g in d.gaps.get((AUGMENTED, EQUIVARIANT), [])}
        per = []
        for r in (r for r in closing if r.at in d.small):
            e, g = r.estimate, gaps.get(int(r.at))
            if e.problem:
                per.append(CANNOT)
                verdict = ""
            elif not e.has_interval:
                per.append(NOT_SHOWN)
                verdict = f" ({r.why_no_interval()})"
            else:
                closed = e.low <= 1 + CLOSED
                per.append(SUPPORTED if closed else NOT_SUPPORTED)
                verdict = (f" (closed: not shown to exceed {1 + CLOSED:g})" if closed else
                           f" (not closed: the interval lies above {1 + CLOSED:g})")
            curve = (f", on the probe {num(g.ratio[0], 3)} at epoch {num(g.epochs[0], 4)} → "
                     f"{num(g.ratio[-1], 3)} at epoch {num(g.epochs[-1], 4)}" if g is not None and g.epochs.size else "")
            parts.append(f"{AUGMENTED} ÷ {EQUIVARIANT} at n = {int(r.at)}: final {est(e, 3)}{curve}{verdict}")
        statuses.append(_combine(per))
    summary = (f"{EQUIVARIANT} more data-efficient than {PLAIN}: {statuses[0]}; {AUGMENTED} closes the gap: "
               f"{statuses[1]}; judged at the small sizes n = {small_text}")
    return Verdict(1, _combine(statuses), summary + ". " + ". ".join(parts) + ".")


# --- equivariance and the whole report -------------------------------------------------------------------

def _equivariance(doc: Document, compute: ComputeAnalysis | None, data: DataAnalysis | None) -> None:
    rows = []
    for kind, frame in (("compute", compute.fit.runs.frame if compute else None),
                        ("data", data.runs.frame if data else None)):
        if frame is None:
            continue
        for f in sorted(frame["family"].unique()):
            err = frame.loc[frame["family"] == f, "equivariance_error"].to_numpy(float)
            err = err[np.isfinite(err)]
            if err.size:
                rows.append((f, kind, str(err.size), num(np.median(err), 3), num(err.min(), 3), num(err.max(), 3)))
            else:
                rows.append((f, kind, "0", "not recorded", "—", "—"))
    doc.add(Heading("Equivariance error"),
            Paragraph("The measured equivariance error of each trained model (trial attribute "
                      "`equivariance_error`), over the COMPLETE trials that were analysed:"),
            Table(("family", "studies", "trials", "median", "min", "max"), tuple(rows)))


def build_report(*, compute: StudyFit | None, data: DataAnalysis | None, sources: list[str], budgets=None,
                 n_boot: int = 200, seed: int = 0, level: float = 0.95,
                 loss_label: str = "validation loss [MSE, m²]") -> Report:
    """The whole report from a compute fit and/or a data analysis (at least one)."""
    if compute is None and data is None:
        raise ValueError("build_report needs compute or data studies")
    c = analyse_compute(compute, budgets=budgets, n_boot=n_boot, seed=seed, level=level) if compute else None
    verdicts = {1: _claim1(data), 2: _claim2(c), 3: _claim3(c)}
    doc = Document("equiscale report")
    doc.add(Paragraph("Storages: " + ", ".join(f"`{s}`" for s in sources) + f". Intervals: {level:.0%} percentile "
                      f"bootstrap, {n_boot} resamples, seed {seed}."))
    lines = []
    if compute:
        fr = compute.runs.frame
        lines.append(f"compute studies: {len(fr)} runs of {', '.join(compute.runs.families())} at "
                     f"{fr['budget'].nunique()} budgets ({num(fr['budget'].min(), 3)}–{num(fr['budget'].max(), 3)} FLOPs)")
        lines += [f"compute studies: {line}" for line in compute.exclusion_lines()]
    if data:
        fr = data.runs.frame
        lines.append(f"data studies: {len(fr)} trials of {', '.join(data.runs.families())} at "
                     f"{fr['train_size'].nunique()} training-set sizes ({int(fr['train_size'].min())}–"
                     f"{int(fr['train_size'].max())} scenes)")
        lines += [f"data studies: left out {k} trial(s): {r}" for r, k in data.runs.excluded.items()]
    doc.add(Bullets(tuple(lines)))
    doc.add(Heading("Claims"),
            Bullets(tuple(f"**Claim {v.claim}** ({CLAIMS[v.claim]}): **{v.status}**. {v.text}"
                          for v in verdicts.values()), ordered=False),
            Paragraph(f"Verdicts: '{SUPPORTED}' where every interval is on the claimed side, '{NOT_SUPPORTED}' where "
                      f"an interval is on the other side, '{NOT_SHOWN}' where intervals overlap or contain 1 (or a ratio has no "
                      f"interval: a single run), "
                      f"'{CANNOT}' where a study or fit is missing or not identified. Claim 1's gap counts as "
                      f"closed where {AUGMENTED}'s final loss is not shown to exceed {EQUIVARIANT}'s by more than "
                      f"{CLOSED:.0%} (the interval's lower end ≤ {1 + CLOSED:g})."))
    if c is not None:
        _compute_sections(doc, c, loss_label=loss_label, level=level)
    else:
        _missing(doc, "Compute studies", "compute study", "loss-vs-compute law, IsoFLOP curve, allocation or held-out "
                 "check, and claims 2 and 3 cannot be judged. To add them", HOW_COMPUTE)
    if data is not None:
        _data_sections(doc, data, loss_label=loss_label, level=level)
    else:
        _missing(doc, "Data efficiency", "data study", "loss-vs-training-set-size law or gap vs epochs, and claim 1 "
                 "cannot be judged. To add it", HOW_DATA)
    _equivariance(doc, c, data)
    csv = render(c.allocation, "csv") if c is not None and c.allocation is not None else None
    return Report(doc, csv, verdicts, heldout=c.heldout if c else {})


def _missing(doc: Document, heading: str, kind: str, what: str, how: str) -> None:
    """The section of a study kind the storages lack: what is missing and how to add it."""
    doc.add(Heading(heading), Paragraph(f"Missing: no {kind} in the given storage(s), so there is no {what}, {how}."))
