"""Compute-optimal allocation tables (N_opt, D_opt, steps_opt, predicted loss with intervals) and writers."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from analysis.allocation import optimal_allocation
from analysis.bootstrap import Estimate, estimate
from analysis.laws import FamilyLaws, allocation_problem
from study.errors import ConfigError, EquiscaleError
from study import schema

FORMATS = ("csv", "md", "tex", "json")
QUANTITIES = ("N_opt", "D_opt", "steps_opt", "loss")


def parse_budgets(text: str) -> list[float]:
    """'1e13,1e14' -> [1e13, 1e14]; an error names the bad entry."""
    budgets = []
    for item in (t.strip() for t in text.split(",")):
        try:
            value = float(item)
        except ValueError:
            raise ConfigError(f"--budgets: {item!r} is not a number") from None
        if not (np.isfinite(value) and value > 0):
            raise ConfigError(f"--budgets: {item!r} must be a positive, finite compute (FLOPs or seconds)")
        budgets.append(value)
    if not budgets:
        raise ConfigError("--budgets is empty")
    return budgets


def _parametric_draws(laws: FamilyLaws, c: float) -> tuple[dict, dict, str]:
    f, s = laws.parametric, laws.samples.get("parametric", {})
    problem = allocation_problem(laws)
    if problem:
        return {}, {}, problem
    n, d = optimal_allocation(c, A=f.A, B=f.B, alpha=f.alpha, beta=f.beta, model=laws.flops_model)
    point = {"N_opt": float(n), "D_opt": float(d), "loss": float(f.predict(n, d))}
    draws = {}
    if s:
        ok = (s["alpha"] > 0) & (s["beta"] > 0)  # the others cannot allocate: NaN (counted as no fit)
        with np.errstate(all="ignore"):
            ns, ds = optimal_allocation(c, A=s["A"][ok], B=s["B"][ok], alpha=s["alpha"][ok], beta=s["beta"][ok],
                                        model=laws.flops_model)
            loss = s["E"][ok] + s["A"][ok] / ns ** s["alpha"][ok] + s["B"][ok] / ds ** s["beta"][ok]
        draws = {k: _fill(ok, v) for k, v in (("N_opt", ns), ("D_opt", ds), ("loss", loss))}
    return point, draws, ""


def _fill(ok, values):
    out = np.full(ok.shape, np.nan)
    out[ok] = values
    return out


def _isoflop_draws(laws: FamilyLaws, c: float) -> tuple[dict, dict, str]:
    f, s = laws.isoflop, laws.samples.get("isoflop", {})
    if f is None:
        return {}, {}, "Approach 2 (IsoFLOP): " + laws.skipped.get("isoflop", "not fitted")
    n, d = f.allocation(c)
    point = {"N_opt": float(n), "D_opt": float(d), "loss": float(f.predict_loss(c))}
    draws = {}
    if s:
        with np.errstate(all="ignore"):
            draws = {"N_opt": s["n_coef"] * c ** s["a"], "D_opt": s["d_coef"] * c ** s["b"],
                     "loss": s["l_coef"] * c ** (-s["l_exp"])}
    return point, draws, ""


def allocation_table(laws_by_family: dict[str, FamilyLaws], budgets, *, approaches=("parametric", "isoflop"),
                     loss_name: str = "loss") -> pd.DataFrame:
    """One row per (family, budget, approach) with value, low and high of every quantity; a family whose law
    of an approach is not identified has its rows too, every quantity empty and `not_identified` saying why.

    Budgets are compute on the laws' axis (`FamilyLaws.axis`, column `axis`). steps_opt = D_opt / the batch
    size of the study at that budget (a budget between trained ones: the nearest trained budget's, named
    in `batch_note`; empty when the batch size is unknown, e.g. for CSV input). loss_name: the column of the
    predicted loss (e.g. `val_loss`: which split the laws were fitted to). `extrapolation` names every one of
    N_opt, D_opt and the budget that lies outside the family's trained runs; `not_identified` says why a
    quantity has no number (its value, low, high are empty).
    """
    rows = []
    for family, laws in laws_by_family.items():
        for approach in approaches:
            for c in budgets:
                point, draws, problem = (_parametric_draws if approach == "parametric" else _isoflop_draws)(laws, c)
                batch, batch_note = laws.batch_for(c)
                if batch and "D_opt" in point:
                    point["steps_opt"] = point["D_opt"] / batch
                    if draws:
                        draws["steps_opt"] = draws["D_opt"] / batch
                row = {"family": family, "budget": c, "axis": laws.axis, "approach": approach}
                problems = {}  # why -> quantities
                for q in QUANTITIES:
                    if q == "steps_opt" and not batch:
                        e = Estimate(float("nan"))
                    else:
                        e = estimate(point.get(q, np.nan), draws.get(q, []), level=laws.level, problem=problem,
                                     positive=True)
                    if e.problem:
                        problems.setdefault(e.problem, []).append(q)
                        row.update({q: np.nan, f"{q}_low": np.nan, f"{q}_high": np.nan})
                    else:
                        row.update({q: e.value, f"{q}_low": e.low, f"{q}_high": e.high})
                outside = laws.trained.outside(n=row["N_opt"], d=row["D_opt"], c=c) if laws.trained else []
                row["extrapolation"] = "; ".join(outside)
                row["not_identified"] = problem or "; ".join(f"{', '.join(qs)}: {why}" for why, qs in problems.items())
                row["batch_note"] = batch_note if batch and np.isfinite(row["steps_opt"]) else ""
                rows.append(row)
    if not rows:
        raise EquiscaleError("no family to tabulate")
    table = pd.DataFrame(rows)
    if loss_name != "loss":
        table = table.rename(columns={q: q.replace("loss", loss_name) for q in table.columns
                                      if q in ("loss", "loss_low", "loss_high")})
    return table


def loss_column(table: pd.DataFrame) -> str:
    """The predicted-loss column of an allocation table (`loss`, `val_loss` or `test_loss`)."""
    return next(c for c in (schema.VAL_LOSS, schema.TEST_LOSS, "loss") if c in table.columns)


def _fmt(x) -> str:
    return "" if x is None or not np.isfinite(x) else f"{x:.4g}"


def _cell(row, q) -> str:
    q = q if q in row.index else loss_column(row.to_frame().T)
    lo, hi = row[f"{q}_low"], row[f"{q}_high"]
    if not np.isfinite(row[q]):
        return "n/a" if row["not_identified"] else ""
    mark = "*" if q in ("N_opt", "D_opt", "steps_opt") and row["extrapolation"] else ""
    return _fmt(row[q]) + mark + (f" [{_fmt(lo)}, {_fmt(hi)}]" if np.isfinite(lo) else "")


def _note(row) -> str:
    parts = []
    if row["extrapolation"]:
        parts.append("*extrapolation: " + row["extrapolation"])
    if row["not_identified"]:
        parts.append("not identified: " + row["not_identified"])
    if row.get("batch_note"):
        parts.append(row["batch_note"])
    return "; ".join(parts)


def table_cells(table: pd.DataFrame) -> tuple[list[str], list[list[str]]]:
    """(column heads, rows of cell text) of the Markdown/LaTeX table: value [low, high], '*' and a note
    where a size is an extrapolation, 'n/a' and the reason where a quantity is not identified."""
    from analysis.axes import EXECUTED, budget_label

    axis = str(table["axis"].iloc[0]) if "axis" in table and len(table) else EXECUTED
    split = {schema.VAL_LOSS: "predicted val loss", schema.TEST_LOSS: "predicted test loss"}.get(loss_column(table), "loss")
    heads = ["family", budget_label(axis), "approach", "N_opt [params]", "D_opt [samples]", "steps_opt", split, "note"]
    cells = [[str(r["family"]), f"{r['budget']:.3g}", str(r["approach"])] + [_cell(r, q) for q in QUANTITIES]
             + [_note(r)] for _, r in table.iterrows()]
    return heads, cells


def render(table: pd.DataFrame, fmt: str) -> str:
    """The table as CSV (value, low, high columns), Markdown or LaTeX (value [low, high]), or JSON.

    Empty cells, never 'nan': a quantity without a number says why in `not_identified` ('n/a' in the
    Markdown/LaTeX cell), and sizes outside the trained runs carry '*' and the `extrapolation` note.
    """
    if fmt not in FORMATS:
        raise ConfigError(f"--format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    if fmt == "csv":
        return table.to_csv(index=False, float_format="%.6g")
    if fmt == "json":
        records = table.astype(object).where(table.notna(), None).to_dict(orient="records")
        return json.dumps(records, indent=2) + "\n"
    heads, cells = table_cells(table)
    if fmt == "md":
        lines = ["| " + " | ".join(heads) + " |", "|" + "---|" * len(heads)]
        return "\n".join(lines + ["| " + " | ".join(c) + " |" for c in cells]) + "\n"
    esc = lambda s: s.replace("_", r"\_").replace("%", r"\%")  # noqa: E731
    lines = [r"\begin{tabular}{lll" + "r" * 4 + "l}", r"\toprule", " & ".join(esc(h) for h in heads) + r" \\",
             r"\midrule"] + [" & ".join(esc(c) for c in row) + r" \\" for row in cells] + [r"\bottomrule", r"\end{tabular}"]
    return "\n".join(lines) + "\n"
