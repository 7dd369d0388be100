"""The report of a study: compute laws, allocation, loss ratios, held-out check, data efficiency, equivariance
error and a verdict with numbers on each of the three claims, as one `Document` plus its files.

The claims compare the families `schema.ClaimFamilies` names (stored with the studies, given on the command
line, else the flagship's defaults). Runs are selected on validation loss; every table reports the selected
runs' test loss beside it. Compute is counted on one axis (`analysis.axes`, `--compute`), and a section puts
claims 2 and 3 under every axis side by side. Numbers are never printed as nan: a quantity that is not
identified says so and why (`Estimate.problem`), a compute-optimal size outside the trained runs carries '*'
and an extrapolation note (`analysis.export`). The verdict rules are `analysis.verdicts`.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from analysis import axes as X
from analysis import plots
from analysis.api import StudyFit
from analysis.claims import (HOW_COMPUTE, HOW_DATA, ComputeAnalysis, Verdict, analyse_compute, claim1, claim2,
                             claim3, claim_texts, est, num)
from analysis.data_efficiency import SIZE, DataAnalysis
from analysis.document import Bullets, Document, Figure, Heading, Paragraph, Table, to_html, to_markdown
from analysis.export import render, table_cells
from analysis.heldout import HeldOut
from analysis.isoflop import BRACKET_RULE
from analysis.lengths import LengthAnalysis, Trend
from analysis.ratios import Ratio
from analysis.verdicts import CANNOT, NOT_SHOWN, NOT_SUPPORTED, NOT_TESTED, RULES, SUPPORTED, VERDICTS  # noqa: F401
from study.schema import ClaimFamilies
from study import schema


def data_pairs(c: ClaimFamilies) -> tuple[tuple, tuple]:
    """(ratio pairs, gap pairs) of the data analysis for these claims: best-loss ratios per (size, length) of
    the plain and the augmented baseline ÷ equivariant, and of the no-translation variant ÷ augmented and ÷
    equivariant; learning-curve gaps of each baseline ÷ equivariant."""
    ratio = [(c.plain, c.equivariant)] + ([(c.augmented, c.equivariant)] if c.augmented else [])
    if c.no_translation:
        ratio += [(c.no_translation, c.augmented), (c.no_translation, c.equivariant)]
    gap = ([(c.augmented, c.equivariant)] if c.augmented else []) + [(c.plain, c.equivariant)]
    return tuple(p for p in ratio if None not in p), tuple(p for p in gap if None not in p)


@dataclass
class Report:
    """The document, the allocation table as CSV (None without compute studies) and the verdicts."""

    document: Document
    allocation_csv: str | None
    verdicts: dict[int, Verdict]
    heldout: dict[str, HeldOut] = field(default_factory=dict)
    axes: dict[str, dict[int, Verdict]] = field(default_factory=dict)  # axis -> claims 2 and 3 on it

    def files(self) -> dict[str, bytes]:
        """Relative path -> content of every file the report consists of."""
        out = {"report.md": to_markdown(self.document).encode(), "report.html": to_html(self.document).encode()}
        if self.allocation_csv is not None:
            out["allocation.csv"] = self.allocation_csv.encode()
        out.update({f"figures/{name}.png": png for name, png in self.document.figures().items()})
        return out


_NO_TREND = Trend(0, (), None, 0)   # a pair not trained at a size: no ratios


def _png(fig) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    return buffer.getvalue()


def _ratio_cell(r: Ratio) -> str:
    if r.outside:
        return f"no ratio ({r.outside})"
    why = r.why_no_interval()
    return est(r.estimate) + (f" ({why})" if why else "")


def _test_cell(r: Ratio) -> str:
    return "—" if r.test is None or r.outside else est(r.test)


def _val_test(row) -> str:
    """'val 0.0330 / test 0.0331' of one selected run."""
    return f"{num(row['loss'])} / {num(row[schema.TEST_LOSS])}"


# --- compute studies -------------------------------------------------------------------------------------

def _context(c: ComputeAnalysis):
    """(points of every family: one row per point, the mean over its seeds; laws; families)."""
    return c.fit.points_frame(), c.fit.laws, c.fit.runs.families()


def _loss_section(doc: Document, c: ComputeAnalysis, *, loss_label: str, pct: str) -> None:
    """Loss vs compute: figure, L(C) per family, best loss per budget (validation-selected, with test)."""
    frame, laws, families = _context(c)
    axis = c.axis
    doc.add(Heading("Loss vs compute"),
            Figure("loss_vs_compute", _png(plots.loss_vs_compute(frame, laws, loss_label=loss_label,
                                                                  compute_label=X.LABEL[axis])),
                   f"Loss vs {X.SHORT[axis]}: every run (faint), the best run per budget (selected on validation "
                   f"loss; its test loss as an open marker), L(C) = coef·C^(−exponent) through the best runs "
                   f"with its {pct} bootstrap band, and E + coef·C^(−exponent) (dashed) where identified."))
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
            if (f, b) not in best.index:
                cells.append("—")
                continue
            row = best.loc[(f, b)]
            at = "" if axis == X.EXECUTED else f", {num(row['compute'], 3)} {X.UNIT[axis]}"
            cells.append(f"{num(row['loss'])} (N = {num(row['params'], 3)}{at})")
        rows.append(tuple(cells))
    doc.add(Paragraph(f"Best {loss_label} per budget (the point with the lowest mean loss over its seeds; N its parameters"
                      + ("" if axis == X.EXECUTED else f", and its {X.SHORT[axis]}") + "):"),
            Table(("budget C [FLOP]", *families), tuple(rows)))
    rows = [(num(b, 3), *[num(best.loc[(f, b), schema.TEST_LOSS]) if (f, b) in best.index else "—" for f in families])
            for b in budgets]
    doc.add(Paragraph("Test loss [MSE, m²] of the same runs (selected on validation loss above):"),
            Table(("budget C [FLOP]", *families), tuple(rows)))


def _ratio_section(doc: Document, c: ComputeAnalysis, *, loss_label: str, pct: str) -> None:
    """The equivariant family ÷ each baseline per budget, with intervals, on validation and test."""
    eq = c.claims.equivariant
    doc.add(Heading("Loss ratio per budget"))
    if not c.ratios:
        doc.add(Paragraph(f"No ratio: it needs compute studies of `{eq}` and of at least one of its baselines "
                          f"({', '.join(c.claims.baselines) or 'none named'})."))
        return
    where = ("at every budget" if c.axis == X.EXECUTED else
             f"at equal {X.SHORT[c.axis]}: at the compute of each of {eq}'s best runs, against each baseline's "
             f"best runs interpolated (log loss linear in log compute) to it")
    heads, rows = ["budget C [FLOP]"], []
    if c.axis != X.EXECUTED:
        heads.append(f"compute [{X.UNIT[c.axis]}]")
    for base in c.ratios:
        heads += [f"{eq} ÷ {base} (val)", f"{eq} ÷ {base} (test)"]
    first = next(iter(c.ratios.values()))
    for i, r0 in enumerate(first):
        cells = [num(r0.budget, 3)] + ([num(r0.at, 3)] if c.axis != X.EXECUTED else [])
        for base, rs in c.ratios.items():
            r = next((x for x in rs if x.budget == r0.budget), None)
            cells += ["—", "—"] if r is None else [_ratio_cell(r), _test_cell(r)]
        rows.append(tuple(cells))
    doc.add(Paragraph(f"Best loss of {eq} ÷ best loss of each baseline {where}, with {pct} bootstrap intervals. A "
                      f"point's loss is the mean over its seeds; the hierarchical bootstrap draws points within each "
                      f"budget and family and seeds within each drawn point, so the interval includes seed-to-seed "
                      f"noise as well as which point is best (a point with a single seed adds no seed noise: see "
                      f"Seed noise). The points are selected on validation loss; 'test' is the same points' test-loss "
                      f"ratio. Below 1: {eq} is better."),
            Table(tuple(heads), tuple(rows)))


def _heldout_section(doc: Document, c: ComputeAnalysis, *, loss_label: str, pct: str) -> None:
    """L(C) without the largest budget against that budget's best loss; the exponent without each budget."""
    frame, laws, families = _context(c)
    unit = X.UNIT[c.axis]
    doc.add(Heading("Held-out check"),
            Paragraph(f"L(C) = coef·C^(−exponent) fitted to every budget but the largest predicts the largest "
                      f"budget's best loss ({pct} interval from the bootstrap of that fit); error = predicted ÷ "
                      f"measured − 1. Beside it, the exponent refitted without each budget in turn: a budget whose "
                      f"removal moves the exponent outside its interval decides the law alone."))
    rows = []
    for f in families:
        h, lo = c.heldout[f], c.lobo[f]
        loo = (f"not possible: {lo.problem}" if lo.problem else
               ", ".join(f"{num(e, 3)} (without {b:.3g})" for b, e in lo.exponents.items())
               + (f"; decided alone by {', '.join(f'{b:.3g}' for b in lo.decisive)}" if lo.decisive else ""))
        if h.problem or h.predicted.problem:
            rows.append((f, num(h.budget, 3), ", ".join(num(b, 3) for b in h.fitted_budgets) or "—", num(h.measured),
                         f"not identified: {h.problem or h.predicted.problem}", "—", loo))
            continue
        inside = {True: "inside", False: "outside", None: "no interval"}[h.inside]
        rows.append((f, num(h.budget, 3), ", ".join(num(b, 3) for b in h.fitted_budgets), num(h.measured),
                     est(h.predicted), f"{h.error:+.1%} (measured {inside} the interval)", loo))
    doc.add(Table(("family", f"held-out compute [{unit}]", "fitted on", "measured best loss", "predicted",
                   "error", "exponent without each budget"), tuple(rows)))


def _isoflop_section(doc: Document, c: ComputeAnalysis, *, loss_label: str, pct: str) -> None:
    """IsoFLOP figure and which budgets bracket a minimum."""
    frame, laws, families = _context(c)
    doc.add(Heading("IsoFLOP curves"),
            Figure("isoflop", _png(plots.isoflop_curves(frame, laws, loss_label=loss_label)),
                   "Validation loss vs parameters at each stored budget (colour; test loss of the same runs as open "
                   "markers), with the parabola in ln N fitted near each budget's minimum and its vertex (×) where "
                   "the parabola brackets a minimum."))
    items = []
    for f in families:
        iso = laws[f].isoflop
        if iso is None:
            items.append(f"{f}: not identified: {laws[f].skipped.get('isoflop', 'not fitted')}")
        else:
            kept = ", ".join(num(k.budget, 3) for k in iso.curves)
            left = "; ".join(iso.rejected.values())
            tally = laws[f].isoflop_resamples
            items.append(f"{f}: minimum bracketed at budgets {kept}" + (f"; left out: {left}" if left else "")
                         + (f"; {tally.text()}" if tally is not None and tally.n else ""))
    doc.add(Paragraph(f"Bracketing rule (the same in `fit`, `export`, `plot` and `report`): {BRACKET_RULE}. Each "
                      f"budget's IsoFLOP profile is its points at the study's rule learning rate (every point where "
                      f"none is stored); a point's loss is the mean over its seeds." + _parabola_rule(laws, families)),
            Bullets(tuple(items)))
    rows = [(f, num(b, 3), k.text()) for f in families for b, k in sorted(laws[f].brackets.items())]
    if rows:
        doc.add(Table(("family", "budget C [FLOP]", "bracketing rule"), tuple(rows)))


def _parabola_rule(laws, families) -> str:
    """' Approach 2 fits …' (how each budget's parabola is fitted; the same for every family), or ''."""
    rules = sorted({laws[f].isoflop.describe_window() for f in families if laws[f].isoflop is not None})
    return f" Approach 2 fits {'; '.join(rules)}." if rules else ""


def _allocation_section(doc: Document, c: ComputeAnalysis, *, loss_label: str, pct: str) -> None:
    """Allocation figure, exponents a and b, IsoFLOP minima and the allocation table."""
    frame, laws, families = _context(c)
    unit = X.UNIT[c.axis]
    doc.add(Heading("Compute-optimal parameters and samples"),
            Figure("allocation", _png(plots.allocation(frame, laws, compute_label=X.LABEL[c.axis])),
                   f"N_opt and D_opt vs {X.SHORT[c.axis]}: IsoFLOP minima and their power laws (Approach 2, dashed) "
                   f"and Approach 3 (L(N, D) = E + A/N^α + B/D^β) with {pct} bands; dotted where outside the "
                   f"trained sizes (extrapolation)."))
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
    doc.add(Paragraph(f"Exponents of N_opt ∝ C^a and D_opt ∝ C^b (C: {X.SHORT[c.axis]} [{unit}]) with their "
                      f"bootstrap intervals ('n/a': not identified, the note says why), and each family's fitted cost "
                      f"model."),
            Table(("family", "approach", "a (N_opt ∝ C^a)", "b (D_opt ∝ C^b)", f"cost model [{unit}]", "note"),
                  tuple(rows)))
    rows = [(f, num(k.budget, 3), num(k.n_opt), num(k.d_opt), num(k.loss_opt), f"{num(k.n_low, 3)}–{num(k.n_high, 3)}")
            + (() if c.axis == X.EXECUTED else (num(k.compute, 3),))
            for f in families if laws[f].isoflop is not None for k in laws[f].isoflop.curves]
    if rows:
        doc.add(Paragraph("IsoFLOP minima (each inside the sizes trained at its budget; validation loss):"),
                Table(("family", "budget C [FLOP]", "N_opt", "D_opt", "loss at minimum", "N fitted")
                      + (() if c.axis == X.EXECUTED else (f"compute at N_opt [{unit}]",)), tuple(rows)))
    doc.add(Heading("Allocation table"))
    if c.allocation is None:
        doc.add(Paragraph(f"No allocation table: {c.allocation_problem}"))
    else:
        heads, cells = table_cells(c.allocation)
        doc.add(Paragraph(f"Compute-optimal N, D, steps and predicted validation loss per family, budget and "
                          f"approach, with {pct} intervals (also `allocation.csv`). steps_opt = D_opt ÷ the batch size "
                          f"of the study at that budget (between trained budgets: the nearest one's, as the note "
                          f"says). '*': outside the trained runs (extrapolation); 'n/a': not identified (the note "
                          f"says why)."),
                Table(tuple(heads), tuple(tuple(r) for r in cells)))


def _seed_section(doc: Document, c: ComputeAnalysis, *, loss_label: str, pct: str) -> None:
    """Each family's seed spread per budget."""
    doc.add(Heading("Seed noise"))
    if not c.spread:
        return
    replicated = any(s.replicated for rows in c.spread.values() for s in rows)
    doc.add(Paragraph("Trials of one family and budget with the same shape and learning rate and a stored seed are "
                      "one point; its loss is the mean over the seeds. Per family and budget: the points (how many "
                      "with more than one seed), the best point (lowest mean over seeds, any learning rate) with its "
                      "seeds, mean ± standard deviation over them, and the pooled relative standard deviation and "
                      "largest relative range over seeds of the replicated points. Every interval of this report "
                      "resamples points within budgets and seeds within points."
                      + ("" if replicated else " No point of these studies has more than one seed (trials without a "
                         "stored seed are points of their own): the intervals cannot include seed noise, and the "
                         "seed spread is unknown.")))
    rows = []
    for f, spreads in c.spread.items():
        for s in spreads:
            sd = (f"{num(s.best_mean)} ± {num(s.best_sd, 2)} ({s.best_rel_sd:.1%})" if np.isfinite(s.best_sd)
                  else f"{num(s.best_mean)} (one seed)")
            rows.append((f, num(s.budget, 3), f"{s.points} ({s.replicated})",
                         f"N = {num(s.best_n, 3)}, lr {num(s.best_lr, 3)}", str(s.best_seeds), sd,
                         f"{s.pooled_rel_sd:.1%}" if np.isfinite(s.pooled_rel_sd) else "—",
                         f"{s.max_rel_range:.1%}" if np.isfinite(s.max_rel_range) else "—"))
    doc.add(Table(("family", "budget C [FLOP]", "points (replicated)", "best point", "seeds", "mean ± SD over seeds",
                   "pooled relative SD", "largest relative range"), tuple(rows)))


def _lr_section(doc: Document, c: ComputeAnalysis, *, loss_label: str, pct: str) -> None:
    """lr_opt per budget, lr_opt ∝ C^γ per family, and the lr-inside-range check."""
    if not c.lr:
        return
    unit = X.UNIT[c.axis]
    doc.add(Heading("Learning rate at each optimum"),
            Paragraph("At each budget's reported optimum (the best point of its IsoFLOP profile) the learning rates "
                      "tried there (mean loss over seeds) and the best of them, lr_opt; the check asks whether lr_opt "
                      "lies strictly inside the learning rates tried at that point. lr_opt ∝ C^γ is fitted (least "
                      "squares in log-log) through the budgets whose optimum has a sweep (at least 2 learning rates), "
                      f"with a {pct} interval from the hierarchical bootstrap of the sweeps (learning-rate points "
                      "within each sweep, seeds within each point; the shape stays the optimum's)."))
    rows = []
    for f, law in c.lr.items():
        for s in law.sweeps:
            tried = ", ".join(f"{num(lr, 3)}: {num(l)}" + (f" ({k} seeds)" if k > 1 else "")
                              for lr, l, k in zip(s.tried, s.losses, s.seeds))
            where = num(s.params, 3) + ("" if not np.isfinite(s.profile_best) or s.profile_best == s.params else
                                        f" (the profile's best point by mean: N = {num(s.profile_best, 3)})")
            rows.append((f, num(s.budget, 3), where, tried, num(s.best_lr, 3),
                         "inside" if s.inside else f"not inside: {s.why_not_inside()}"))
    doc.add(Table(("family", "budget C [FLOP]", "N at the optimum", "lr tried: mean loss", "lr_opt",
                   "strictly inside the lrs tried"), tuple(rows)))
    rows = [(f, ", ".join(num(b, 3) for b in law.used) or "none",
             est(law.gamma, 3) if not law.problem else f"not identified: {law.problem}",
             est(law.coef, 3) if not law.problem else "—") for f, law in c.lr.items()]
    doc.add(Paragraph(f"lr_opt = coef·C^γ (C: {X.SHORT[c.axis]} [{unit}]), a hyperparameter scaling law beside "
                      f"N_opt and D_opt:"), Table(("family", "budgets with a sweep", "γ", "coef"), tuple(rows)))
    outside = [f"{f} at {num(s.budget, 3)}: {s.why_not_inside()}" for f, law in c.lr.items() for s in law.not_inside]
    doc.add(Paragraph("Optima whose learning rate is not strictly inside the learning rates tried there: "
                      + ("; ".join(outside) if outside else "none") + "."))


def _compute_sections(doc: Document, c: ComputeAnalysis, *, loss_label: str, level: float) -> None:
    for section in (_loss_section, _seed_section, _ratio_section, _heldout_section, _isoflop_section,
                    _allocation_section, _lr_section):
        section(doc, c, loss_label=loss_label, pct=f"{level:.0%}")


def _axes_section(doc: Document, axes: dict[str, ComputeAnalysis], verdicts: dict[str, dict[int, Verdict]],
                  *, pct: str) -> None:
    """Claims 2 and 3 under every compute axis side by side, the ratio per budget on each, what changes."""
    names = next(iter(axes.values())).claims
    eq = names.equivariant
    order = [a for a in X.AXES if a in axes]
    doc.add(Heading("Compute axes"),
            Paragraph("The same runs with compute counted four ways: " + "; ".join(
                f"**{a}**: {X.SHORT[a]}" + (f" ({'; '.join(f'{f}: {h}' for f, h in axes[a].fit.runs.axis_notes.items())})"
                                             if axes[a].fit.runs.axis_notes else "") for a in order)
                      + ". On every axis the runs stay grouped by the budget they were trained at (the IsoFLOP "
                        "groups and 'best run per budget'); L(C), the held-out check and the allocation exponents use "
                        "each run's compute on the axis, and the ratios compare at equal compute on it. Measured "
                        "seconds are each trial's wall time (training, its periodic probe validation and the final "
                        "evaluation) on a shared machine: noisy."))
    keys = list(dict.fromkeys(k for a in order for n in (2, 3) for k in verdicts[a][n].parts))
    rows = [("claim 2 verdict", *[f"**{verdicts[a][2].status}**" for a in order])]
    rows += [(k, *[verdicts[a][2].parts.get(k, ("", "—"))[1] for a in order]) for k in keys
             if any(k in verdicts[a][2].parts for a in order)]
    rows += [("claim 3 verdict", *[f"**{verdicts[a][3].status}**" for a in order])]
    rows += [(k, *[verdicts[a][3].parts.get(k, ("", "—"))[1] for a in order]) for k in keys
             if any(k in verdicts[a][3].parts for a in order)]
    doc.add(Paragraph(f"Claims 2 and 3 on each axis ({pct} intervals):"), Table(("", *order), tuple(rows)))
    for base in names.baselines:
        if not any(base in axes[a].ratios for a in order):
            continue
        budgets = sorted({r.budget for a in order for r in axes[a].ratios.get(base, [])})
        rows = []
        for b in budgets:
            cells = [num(b, 3)]
            for a in order:
                r = next((x for x in axes[a].ratios.get(base, []) if x.budget == b), None)
                cells.append("—" if r is None else _ratio_cell(r) + ("" if r.test is None or r.outside else
                                                                      f"; test {num(r.test.value)}")
                             + ("" if a == X.EXECUTED or r.outside else f" at {num(r.at, 3)} {X.UNIT[a]}"))
            rows.append(tuple(cells))
        doc.add(Paragraph(f"{eq} ÷ {base} best validation loss per budget of {eq} on each axis ({pct} interval; the "
                          f"same runs' test-loss ratio; on the other axes at the compute of {eq}'s best run, against "
                          f"{base}'s best runs interpolated to it):"),
                Table((f"{eq}'s budget [FLOP]", *order), tuple(rows)))
    changes = []
    for n in (2, 3):
        if len({verdicts[a][n].status for a in order}) > 1:
            changes.append(f"claim {n}: " + ", ".join(f"{verdicts[a][n].status} ({a})" for a in order))
        for k in keys:
            values = {a: verdicts[a][n].parts[k][0] for a in order if k in verdicts[a][n].parts}
            if len(set(values.values())) > 1:
                changes.append(f"{k}: " + ", ".join(f"{v} ({a})" for a, v in values.items()))
    doc.add(Paragraph("What changes with the axis: " + ("; ".join(changes) if changes else
                                                          "no verdict changes with the axis") + "."))


def _rules_paragraph(claims: ClaimFamilies) -> Paragraph:
    return Paragraph(
        f"Verdicts: '{SUPPORTED}' where every interval is on the claimed side, '{NOT_SUPPORTED}' where an interval "
        f"is on the other side, '{NOT_SHOWN}' where intervals overlap or contain 1 (or a ratio has no interval: a "
        f"single run), '{CANNOT}' where a study or fit is missing or not identified. Rules: "
        + "; ".join(f"{k}: {v}" for k, v in RULES.items())
        + f". Claim 1 names: equivariant {claims.equivariant}, plain baseline {claims.plain}, augmented "
          f"{claims.augmented or 'none'}; '{NOT_TESTED}': the design cannot separate the effect.")


# --- data studies ----------------------------------------------------------------------------------------

def _data_sections(doc: Document, d: DataAnalysis, claims: ClaimFamilies, *, loss_label: str,
                   level: float) -> None:
    pct = f"{level:.0%}"
    frame, families = d.runs.longest(), d.runs.families()
    gaps = [g for curves in d.gaps.values() for g in curves if g.train_size in d.small]
    doc.add(Heading("Data efficiency"),
            Figure("data_efficiency", _png(plots.data_efficiency(frame, d.laws, gaps, loss_label=loss_label)),
                   f"Left: loss vs training-set size at each size's longest training length (every learning rate's "
                   f"mean over its seeds faint, the best per size by validation loss with its test loss as an open "
                   f"marker, "
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
    doc.add(Paragraph(f"L(n) = coef·n^(−α) through the best point (lowest mean loss over seeds, over learning rates, "
                      f"at the longest training length) per training-set size n, least squares in log-log; {pct} "
                      f"intervals resample the sizes and, within each, its learning rates."),
            Table(("family", "sizes", "α", "coef"), tuple(rows)))
    best = d.best.set_index(["family", SIZE])
    sizes = sorted(frame[SIZE].unique())
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
    doc.add(Paragraph(f"Best {loss_label} per training-set size at its longest training length (its epochs and "
                      f"learning rate):"),
            Table(("n [scenes]", *families), tuple(rows)))
    rows = [(str(int(n)), *[num(best.loc[(f, n), schema.TEST_LOSS]) if (f, n) in best.index else "—" for f in families])
            for n in sizes]
    doc.add(Paragraph("Test loss [MSE, m²] of the same points (selected on validation loss above):"),
            Table(("n [scenes]", *families), tuple(rows)))
    _length_section(doc, d, claims, level=level)
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


def _point_cell(p) -> str:
    """'val / test (lr 0.002, 2 seeds, inside)' of one best point."""
    sd = f" ± {num(p.val_sd, 2)}" if np.isfinite(p.val_sd) else ""
    return f"{num(p.val)}{sd} / {num(p.test)} (lr {num(p.lr, 3)}, {p.seeds} seed(s), {p.grid_text()})"


def _pooled(L: LengthAnalysis) -> str:
    """The rule of the claim-1-by-length intervals' pooled seed noise, and which families it pooled here."""
    here = ("; ".join(f"{f} {pool.sd:.3g} from {pool.points} points" for f, pool in L.pools.items())
            if L.pools else "")
    return ("Where both families of a ratio have at least 2 points with several seeds, a point's own seeds are not "
            "redrawn (2 seeds resampled give no spread half the time: such intervals read narrow) but the seed noise "
            "is pooled: per family the deviations of log loss of such a point's seeds from their mean, scaled by "
            "√(k/(k−1)) for k seeds, form one pool, and each resample adds to every lr point's log mean loss the mean "
            "of as many pooled deviations as it has seeds (a 1-seed point too), then re-picks the best lr; this "
            "assumes the seed noise of log loss is similar across a family's sizes, lengths and lrs. "
            + (f"Pooled here (seed standard deviation of log validation loss): {here}." if here else
               "Here no family has 2 such points: nothing is pooled."))


def _length_section(doc: Document, d: DataAnalysis, claims: ClaimFamilies, *, level: float) -> None:
    """Claim 1 by training length: per size a table (rows: lengths; the best point of each family, the ratios of
    each baseline ÷ the equivariant family with intervals), the trend per size, the lr-inside check, the figure and
    the no-translation variant."""
    L, pct = d.lengths, f"{level:.0%}"
    eq, notrans = claims.equivariant, claims.no_translation
    pairs = [p for p in L.trends if notrans is None or notrans not in p]
    variant = [p for p in L.trends if notrans is not None and notrans in p]
    shown = [f for f in dict.fromkeys([eq, claims.plain, claims.augmented])
             if f and any(p.family == f for p in L.points)]
    doc.add(Heading("Claim 1 by training length"),
            Figure("length_ratios", _png(plots.length_ratios({p: L.trends[p] for p in pairs + variant},
                                                             level=level)),
                   f"Best-loss ratio of each baseline ÷ {eq} against the training length, one line per training-set "
                   f"size, with {pct} bootstrap intervals (bars) and a line at 1 (above 1: {eq} is better)."),
            Paragraph(f"Per training-set size n and training length (steps), each family's best learning rate: the "
                      f"point (one lr) with the lowest mean validation loss over its seeds; cells: mean validation "
                      f"loss ± seed standard deviation / the same seeds' mean test loss (lr, seeds, whether the best lr "
                      f"lies strictly inside the lrs trained there). Ratios: best validation loss of a baseline ÷ "
                      f"{eq}'s with {pct} intervals from a bootstrap that draws each lr point's seeds with replacement "
                      f"and re-picks the best lr in each resample (at a size where no point has several seeds: the lr "
                      f"points drawn with replacement instead); 'test': the same points' test-loss ratio. {_pooled(L)} "
                      f"Slope: of log(ratio) against log(steps) over a size's lengths, "
                      f"interval from the same resamples; 'small': where claim 1 is judged."))
    sizes = sorted({p.train_size for p in L.points})
    for n in sizes:
        rows = []
        for steps in L.lengths(n):
            cells = [f"{steps:,}"]
            for f in shown:
                p = L.point(f, n, steps)
                cells.append("—" if p is None else _point_cell(p))
            for pair in pairs:
                r = next((x for x in L.trends[pair].get(n, _NO_TREND).ratios if int(x.at) == steps), None)
                cells += ["—", "—"] if r is None else [_ratio_cell(r), _test_cell(r)]
            rows.append(tuple(cells))
        trends = []
        for pair in pairs:
            t = L.trends[pair].get(n)
            if t is not None and len(t.ratios) > 1:
                trends.append(f"{pair[0]} ÷ {pair[1]}: slope {est(t.slope, 3)} over {len(t.ratios)} lengths "
                              f"(span {num(t.span, 3)}×, fewest seeds of a best point {t.min_seeds})")
        doc.add(Paragraph(f"n = {n:,} scenes" + (" (small)" if n in d.small else "") + ": "
                          + ("; ".join(trends) if trends else "one training length: no trend") + "."),
                Table(("steps", *[f"{f}: val / test" for f in shown],
                       *[f"{a} ÷ {b} ({s})" for a, b in pairs for s in ("val", "test")]), tuple(rows)))
    edges = L.edges()
    doc.add(Paragraph(f"Learning rate inside its grid: the best lr of {len(L.points) - len(edges)} of {len(L.points)} "
                      f"reported (family, size, length) points lies strictly inside the lrs trained there; at an edge: "
                      + ("; ".join(f"{p.family} n = {p.train_size:,} {p.steps:,} steps ({p.grid_text()})"
                                   for p in edges) if edges else "none") + "."))
    if notrans is None:
        return
    if not variant:
        doc.add(Paragraph(f"No-translation variant {notrans}: no data study of it (or of {claims.augmented} / {eq} at "
                          f"its size)."))
        return
    rows = []
    for n in sorted({n for p in variant for n in L.trends[p]}):
        for steps in L.lengths(n):
            p = L.point(notrans, n, steps)
            if p is None:
                continue
            cells = [f"{n:,}", f"{steps:,}", _point_cell(p)]
            for pair in variant:
                r = next((x for x in L.trends[pair].get(n, _NO_TREND).ratios if int(x.at) == steps), None)
                cells += ["—", "—"] if r is None else [_ratio_cell(r), _test_cell(r)]
            rows.append(tuple(cells))
    doc.add(Paragraph(f"No-translation variant ({notrans}: {claims.augmented} without translations in its "
                      f"augmentation), reported without a verdict: its best points and its ratios with {pct} "
                      f"intervals (above 1: {notrans} is worse)."),
            Table(("n [scenes]", "steps", f"{notrans}: val / test",
                   *[f"{a} ÷ {b} ({s})" for a, b in variant for s in ("val", "test")]), tuple(rows)))


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
                 loss_label: str = "validation loss [MSE, m²]", claims: ClaimFamilies | None = None,
                 claims_source: str = "the defaults", data_claims: ClaimFamilies | None = None,
                 other_axes: dict[str, StudyFit] | None = None) -> Report:
    """The whole report from a compute fit (on its axis) and/or a data analysis (at least one).

    claims: which families claims 2 and 3 compare (default `ClaimFamilies()`); data_claims: which families claim 1
    compares (default: `claims`); other_axes: fits of the same runs on the other compute axes (the section that
    puts claims 2 and 3 side by side; none: that section is left out).
    """
    if compute is None and data is None:
        raise ValueError("build_report needs compute or data studies")
    claims = claims or ClaimFamilies()
    data_claims = data_claims or claims
    pct = f"{level:.0%}"
    c = analyse_compute(compute, claims, budgets=budgets, n_boot=n_boot, seed=seed, level=level) if compute else None
    verdicts = {1: claim1(data, data_claims), 2: claim2(c), 3: claim3(c)}
    axes, axis_verdicts = {}, {}
    if c is not None:
        axes[c.axis] = c
        for axis, fit in (other_axes or {}).items():
            if axis != c.axis:
                axes[axis] = analyse_compute(fit, claims, n_boot=n_boot, seed=seed, level=level, allocation=False)
        axis_verdicts = {a: {2: claim2(x), 3: claim3(x)} for a, x in axes.items()}
    doc = Document("equiscale report")
    doc.add(Paragraph("Storages: " + ", ".join(f"`{s}`" for s in sources) + f". Intervals: {pct} percentile "
                      f"bootstrap, {n_boot} resamples, seed {seed}."))
    same = _names(data_claims) == _names(claims)
    lines = [f"{'claims compare' if same else 'claims 2 and 3 compare'}: {_names(claims)}; from {claims_source}"]
    if not same:
        lines.append(f"claim 1 compares: {_names(data_claims)}; from the data studies' stored `claims`")
    if compute:
        fr = compute.runs.frame
        lines.append(f"compute studies: {len(fr)} runs of {', '.join(compute.runs.families())} at "
                     f"{fr['budget'].nunique()} budgets ({num(fr['budget'].min(), 3)}–{num(fr['budget'].max(), 3)} FLOPs); "
                     f"compute counted as {X.SHORT[compute.runs.axis]} (`--compute {compute.runs.axis}`)")
        lines += [f"compute studies: {line}" for line in compute.exclusion_lines()]
    if data:
        fr = data.runs.frame
        lines.append(f"data studies: {len(fr)} trials of {', '.join(data.runs.families())} at "
                     f"{fr[SIZE].nunique()} training-set sizes ({int(fr[SIZE].min())}–"
                     f"{int(fr[SIZE].max())} scenes)")
        lines += [f"data studies: left out {k} trial(s): {r}" for r, k in data.runs.excluded.items()]
    lines.append("every table and figure selects runs on validation loss and reports their test loss beside it")
    doc.add(Bullets(tuple(lines)))
    texts = {**claim_texts(claims), 1: claim_texts(data_claims)[1]}
    items = []
    for v in verdicts.values():
        item = f"**Claim {v.claim}** ({texts[v.claim]}): **{v.status}**. {v.text}"
        if v.claim in (2, 3) and len(axis_verdicts) > 1:
            item += (" On every compute axis (section Compute axes): "
                     + "; ".join(f"{a}: {axis_verdicts[a][v.claim].status}" for a in X.AXES if a in axis_verdicts) + ".")
        items.append(item)
    doc.add(Heading("Claims"), Bullets(tuple(items), ordered=False), _rules_paragraph(data_claims))
    if c is not None:
        _compute_sections(doc, c, loss_label=loss_label, level=level)
        if len(axes) > 1:
            _axes_section(doc, axes, axis_verdicts, pct=pct)
    else:
        _missing(doc, "Compute studies", "compute study", "loss-vs-compute law, IsoFLOP curve, allocation or held-out "
                 "check, and claims 2 and 3 cannot be judged. To add them", HOW_COMPUTE)
    if data is not None:
        _data_sections(doc, data, data_claims, loss_label=loss_label, level=level)
    else:
        _missing(doc, "Data efficiency", "data study", "loss-vs-training-set-size law or gap vs epochs, and claim 1 "
                 "cannot be judged. To add it", HOW_DATA)
    _equivariance(doc, c, data)
    csv = render(c.allocation, "csv") if c is not None and c.allocation is not None else None
    return Report(doc, csv, verdicts, heldout=c.heldout if c else {}, axes=axis_verdicts)


def _names(c: ClaimFamilies) -> str:
    return (f"equivariant {c.equivariant}; baselines {', '.join(c.baselines) or 'none'} (plain {c.plain}; augmented "
            f"{c.augmented or 'none'})")


def _missing(doc: Document, heading: str, kind: str, what: str, how: str) -> None:
    """The section of a study kind the storages lack: what is missing and how to add it."""
    doc.add(Heading(heading), Paragraph(f"Missing: no {kind} in the given storage(s), so there is no {what}, {how}."))
