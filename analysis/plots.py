"""Figures: loss vs compute with fitted laws and bands, IsoFLOP curves with minima, N_opt/D_opt vs C,
and data efficiency (loss vs training-set size, the gap between two families vs epochs).

Figures are `matplotlib.figure.Figure` objects drawn without pyplot, so importing this module selects
no backend and touches no global state; `fig.savefig` renders them.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.cm import ScalarMappable
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure
from matplotlib.ticker import FixedLocator, FuncFormatter, LogLocator, NullFormatter

from analysis.allocation import optimal_allocation
from analysis.data_efficiency import SIZE
from analysis.laws import FamilyLaws
from study import schema

COMPUTE_LABEL = "training compute C [FLOP]"
FORMATS = ("png", "svg")


def _tick_text(v: float, _pos=None) -> str:
    """A log-axis label: '0.03', '300' or '3×10¹¹' (mathtext), never two labels run together."""
    if not v > 0:
        return ""
    exp = int(np.floor(np.log10(v) + 1e-9))
    mant = v / 10.0**exp
    if -3 <= exp <= 3:
        return np.format_float_positional(float(f"{v:.3g}"), trim="-")
    m = f"{mant:.2g}"
    return f"$10^{{{exp}}}$" if m == "1" else f"${m}\\times10^{{{exp}}}$"


def log_ticks(ax, which: str = "both", most: int = 7) -> None:
    """Label a log axis with at most `most` ticks at 1, 2, 5 (or only whole decades) × 10^k inside its
    limits, and no labels on the minor ticks (matplotlib's default labels minor ticks of a short log axis,
    which run into each other: '3×10⁴¹¹×10¹¹')."""
    for name in ("x", "y") if which == "both" else (which,):
        axis = ax.xaxis if name == "x" else ax.yaxis
        if axis.get_scale() != "log":
            continue
        lo, hi = sorted(ax.get_xlim() if name == "x" else ax.get_ylim())
        ticks = []
        for subs in ((1.0,), (1.0, 2.0, 5.0), (1.0, 1.5, 2.0, 3.0, 5.0, 7.0), tuple(np.arange(1.0, 10.0))):
            found = [m * 10.0**k for k in range(int(np.floor(np.log10(lo))) - 1, int(np.ceil(np.log10(hi))) + 1)
                     for m in subs if lo <= m * 10.0**k <= hi]
            if len(found) > most:
                break
            ticks = found
            if len(found) >= 3:
                break
        if len(ticks) < 2:  # a very short axis: its two ends
            ticks = [float(f"{lo * 1.02:.2g}"), float(f"{hi / 1.02:.2g}")]
        axis.set_major_locator(FixedLocator(ticks))
        axis.set_major_formatter(FuncFormatter(_tick_text))
        axis.set_minor_locator(LogLocator(base=10.0, subs=np.arange(2.0, 10.0)))
        axis.set_minor_formatter(NullFormatter())


def _note(ax, text: str, width: int = 60) -> None:
    """A panel's note as a wrapped second line under its x label (never over the data, never cut off)."""
    label = ax.get_xlabel()
    ax.set_xlabel(label + "\n" + "\n".join(textwrap.wrap(text, width)), fontsize=8)


def _colors(families):
    cmap = colormaps["tab10"]
    return {f: cmap(i % 10) for i, f in enumerate(families)}


def _band(ax, x, curves, color, level):
    """Shade the pointwise percentile band of bootstrap curves (S, G)."""
    curves = curves[np.all(np.isfinite(curves), axis=1)]
    if len(curves) >= 2:
        lo, hi = np.percentile(curves, [50 * (1 - level), 50 * (1 + level)], axis=0)
        ax.fill_between(x, lo, hi, color=color, alpha=0.18, linewidth=0)


def _label(law: FamilyLaws, approach: str, key: str, text: str) -> str | None:
    """`text` formatted with the estimate's value, or None when it is not identified (nothing drawn)."""
    e = law.estimates.get(approach, {}).get(key)
    if e is None or e.problem or not np.isfinite(e.value):
        return None
    return text.format(e.value)


def _line_in_range(ax, x, y, span, color, label, linestyle="-"):
    """Draw y(x) in full where y lies inside the trained span, thin and dotted outside (extrapolation)."""
    y = np.asarray(y, float)
    inside = (y >= span[0] * (1 - 1e-9)) & (y <= span[1] * (1 + 1e-9))
    ax.plot(x, np.where(inside, y, np.nan), color=color, linestyle=linestyle, label=label)
    if (~inside).any():
        ax.plot(x, np.where(~inside, y, np.nan), color=color, linestyle=(0, (1, 2)), linewidth=0.9)
    return bool((~inside).any())


def _x(frame: pd.DataFrame) -> str:
    """The column holding each run's compute on the fit's axis ('budget' for frames without one)."""
    return "compute" if "compute" in frame else "budget"


def loss_vs_compute(frame: pd.DataFrame, laws: dict[str, FamilyLaws], *, loss_label: str,
                    compute_label: str = COMPUTE_LABEL):
    """All runs (faint), best per budget (selected on `loss`; its test loss as an open marker), power law
    with band and the irreducible-term law (dashed)."""
    fig = Figure(figsize=(7.2, 5.0))
    ax = fig.subplots()
    colors = _colors(laws)
    x = _x(frame)
    grid = np.geomspace(frame[x].min() / 1.5, frame[x].max() * 1.5, 100)
    tested = False
    for family, law in laws.items():
        runs = frame[frame["family"] == family]
        col = colors[family]
        ax.scatter(runs[x], runs["loss"], s=8, color=col, alpha=0.25, linewidths=0)
        best = runs.loc[runs.groupby("budget")["loss"].idxmin()]
        ax.scatter(best[x], best["loss"], s=28, color=col, edgecolors="black", linewidths=0.5, zorder=3,
                   label=f"{family}: best run per budget")
        if schema.TEST_LOSS in best and np.isfinite(best[schema.TEST_LOSS].to_numpy(float)).any():
            ax.scatter(best[x], best[schema.TEST_LOSS], s=30, facecolors="none", edgecolors=col, linewidths=1.0, zorder=3)
            tested = True
        if law.power is not None and _label(law, "power", "exponent", "{}") is not None:
            ax.plot(grid, law.power.predict(grid), color=col, label=f"{family}: L ∝ C^{-law.power.exponent:.3f}")
            s = law.samples.get("power", {})
            if s:
                _band(ax, grid, s["coef"][:, None] * grid[None] ** (-s["exponent"][:, None]), col, law.level)
        p = law.power_irreducible
        e_est = law.estimates.get("power_irreducible", {})
        if p is not None and all(not e.problem for e in e_est.values()):
            ax.plot(grid, p.predict(grid), color=col, linestyle="--",
                    label=f"{family}: L = {p.E:.3g} + a·C^{-p.exponent:.3f}")
    if tested:
        ax.scatter([], [], s=30, facecolors="none", edgecolors="grey", label="test loss of that run (open)")
    ax.set(xscale="log", yscale="log", xlabel=compute_label, ylabel=loss_label, title="Loss vs compute")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)
    log_ticks(ax)
    fig.tight_layout()
    return fig


def isoflop_curves(frame: pd.DataFrame, laws: dict[str, FamilyLaws], *, loss_label: str):
    """One panel per family: loss vs N per budget (colour), fitted parabolas in ln N, minima (×)."""
    families = list(laws)
    fig = Figure(figsize=(5.2 * len(families), 4.4), layout="constrained")
    axes = fig.subplots(1, len(families), squeeze=False)
    budgets = np.unique(frame["budget"])
    norm = LogNorm(budgets.min(), budgets.max() * (1.0001 if budgets.size == 1 else 1))
    cmap = colormaps["viridis"]
    for ax, family in zip(axes[0], families):
        runs = frame[frame["family"] == family]
        colours = cmap(norm(runs["budget"].to_numpy(float)))
        ax.scatter(runs["params"], runs["loss"], c=colours, s=14)
        if schema.TEST_LOSS in runs and np.isfinite(runs[schema.TEST_LOSS].to_numpy(float)).any():
            ax.scatter(runs["params"], runs[schema.TEST_LOSS], s=14, facecolors="none", edgecolors=colours, linewidths=0.7)
        fit = laws[family].isoflop
        if fit is not None:
            for curve in fit.curves:  # each parabola over the sizes it was fitted to (the window)
                x = np.linspace(np.log(curve.n_low), np.log(curve.n_high), 60)
                c2, c1, c0 = curve.coeffs
                ax.plot(np.exp(x), c2 * x * x + c1 * x + c0, color=cmap(norm(curve.budget)), linewidth=1)
            ax.scatter([k.n_opt for k in fit.curves], [k.loss_opt for k in fit.curves], marker="x", s=50,
                       color="crimson", zorder=4, label="IsoFLOP minimum")
            ax.legend(fontsize=7)
        ax.set(xscale="log", xlabel="parameters N (open: test loss)", ylabel=loss_label,
               title=f"IsoFLOP curves: {family}")
        if fit is not None and fit.rejected:
            _note(ax, f"left out (no minimum bracketed): budget(s) "
                      + ", ".join(f"{c:.3g}" for c in sorted(fit.rejected)), width=55)
        elif fit is None:
            _note(ax, "no IsoFLOP fit: " + laws[family].skipped.get("isoflop", ""), width=55)
        ax.grid(True, which="both", alpha=0.3)
        log_ticks(ax, "x")
    sm = ScalarMappable(norm=norm, cmap=cmap)
    fig.colorbar(sm, ax=list(axes[0]), label=COMPUTE_LABEL)
    return fig


def allocation(frame: pd.DataFrame, laws: dict[str, FamilyLaws], *, budgets=(), compute_label: str = COMPUTE_LABEL):
    """N_opt and D_opt vs C per family: IsoFLOP minima and law, Approach 3 allocation with band."""
    fig = Figure(figsize=(12, 5.0))
    axes = fig.subplots(1, 2)
    colors = _colors(laws)
    c_all = np.concatenate([frame[_x(frame)].to_numpy(float), np.asarray(budgets, float)])
    grid = np.geomspace(c_all.min() / 1.5, c_all.max() * 1.5, 100)
    extrapolated = False
    for family, law in laws.items():
        col = colors[family]
        spans = (law.trained.n, law.trained.d) if law.trained else ((0, np.inf), (0, np.inf))
        if law.isoflop is not None:
            f = law.isoflop
            c = [k.x for k in f.curves]
            axes[0].scatter(c, [k.n_opt for k in f.curves], color=col, marker="o", s=22,
                            label=f"{family}: IsoFLOP minima")
            axes[1].scatter(c, [k.d_opt for k in f.curves], color=col, marker="o", s=22,
                            label=f"{family}: IsoFLOP minima")
            n, d = f.allocation(grid)
            for ax, y, key, span in ((axes[0], n, "a", spans[0]), (axes[1], d, "b", spans[1])):
                label = _label(law, "isoflop", key, f"{family}: Approach 2, {key}={{:.3f}}")
                if label is not None:
                    extrapolated |= _line_in_range(ax, grid, y, span, col, label, linestyle="--")
        p = law.parametric
        if p is not None and p.alpha > 0 and p.beta > 0:
            n, d = optimal_allocation(grid, A=p.A, B=p.B, alpha=p.alpha, beta=p.beta, model=law.flops_model)
            drawn = False
            for ax, y, key, span in ((axes[0], n, "a", spans[0]), (axes[1], d, "b", spans[1])):
                label = _label(law, "parametric", key, f"{family}: Approach 3, {key}={{:.3f}}")
                if label is not None:
                    extrapolated |= _line_in_range(ax, grid, y, span, col, label)
                    drawn = True
            s = law.samples.get("parametric", {})
            if s and drawn:
                ok = (s["alpha"] > 0) & (s["beta"] > 0)
                with np.errstate(all="ignore"):
                    ns, ds = optimal_allocation(grid[None], A=s["A"][ok, None], B=s["B"][ok, None],
                                                alpha=s["alpha"][ok, None], beta=s["beta"][ok, None],
                                                model=law.flops_model)
                _band(axes[0], grid, ns, col, law.level)
                _band(axes[1], grid, ds, col, law.level)
    if extrapolated:
        for ax in axes:
            ax.plot([], [], color="grey", linestyle=(0, (1, 2)), label="outside the trained sizes (extrapolation)")
    for ax, what in zip(axes, ("compute-optimal parameters N_opt", "compute-optimal samples D_opt")):
        ax.set(xscale="log", yscale="log", xlabel=compute_label, ylabel=what, title=what + " vs C")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
        log_ticks(ax)
    fig.tight_layout()
    return fig


def data_efficiency(frame: pd.DataFrame, laws: dict, gaps: list, *, loss_label: str):
    """Left: loss vs training-set size per family (all trials faint, best per size, L ∝ n^−α with band).
    Right: each gap curve (numerator ÷ denominator loss vs epoch; colour: training-set size, line style: pair).

    laws: family -> `analysis.data_efficiency.DataLaw`; gaps: `GapCurve`s (empty: the panel says so)."""
    fig = Figure(figsize=(11, 4.4))
    axes = fig.subplots(1, 2)
    ax = axes[0]
    colors = _colors(sorted(frame["family"].unique()))
    sizes = frame[SIZE].to_numpy(float)
    grid = np.geomspace(sizes.min() / 1.3, sizes.max() * 1.3, 100)
    for family, col in colors.items():
        runs = frame[frame["family"] == family]
        ax.scatter(runs[SIZE], runs["loss"], s=8, color=col, alpha=0.25, linewidths=0)
        best = runs.loc[runs.groupby(SIZE)["loss"].idxmin()]
        ax.scatter(best[SIZE], best["loss"], s=28, color=col, edgecolors="black", linewidths=0.5, zorder=3,
                   label=f"{family}: best per size")
        if schema.TEST_LOSS in best and np.isfinite(best[schema.TEST_LOSS].to_numpy(float)).any():
            ax.scatter(best[SIZE], best[schema.TEST_LOSS], s=30, facecolors="none", edgecolors=col, linewidths=1.0,
                       zorder=3)
        law = laws.get(family)
        alpha = law.estimates.get("alpha") if law is not None and law.law is not None else None
        if alpha is not None and not alpha.problem:
            ax.plot(grid, law.predict(grid), color=col, label=f"{family}: L ∝ n^{-alpha.value:.3f}")
            if law.samples:
                s = law.samples
                _band(ax, grid, s["coef"][:, None] * grid[None] ** (-s["alpha"][:, None]), col, law.level)
    ax.scatter([], [], s=30, facecolors="none", edgecolors="grey", label="test loss of that trial (open)")
    ax.set(xscale="log", yscale="log", xlabel="training-set size n [scenes]", ylabel=loss_label,
           title="Loss vs training-set size")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)
    log_ticks(ax)
    ax = axes[1]
    if gaps:
        cmap = colormaps["viridis"]
        norm = LogNorm(min(g.train_size for g in gaps), max(g.train_size for g in gaps) * 1.0001)
        pairs = list(dict.fromkeys((g.numerator, g.denominator) for g in gaps))
        styles = ("-", "--", ":", "-.")
        for g in gaps:
            k = pairs.index((g.numerator, g.denominator))
            ax.plot(g.epochs, g.ratio, marker="o", markersize=3, color=cmap(norm(g.train_size)),
                    linestyle=styles[k % len(styles)],
                    label=f"{g.numerator} ÷ {g.denominator}, n = {g.train_size}" + (" (interpolated)" if g.interpolated else ""))
        ax.axhline(1.0, color="grey", linewidth=0.8)
        ax.set(xscale="log", xlabel="epochs", ylabel="loss ratio on the probe subset",
               title="Gap vs epochs")
        ax.legend(fontsize=7)
        log_ticks(ax, "x")
    else:
        ax.text(0.5, 0.5, "no learning curves shared by the two families", transform=ax.transAxes,
                ha="center", va="center", fontsize=8)
        ax.set_axis_off()
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    return fig


def length_ratios(trends: dict, *, level: float):
    """One panel per (numerator, denominator) pair: the best-loss ratio vs training length (steps), a line per
    training-set size (colour) with its interval as bars, and a line at 1.

    trends: (numerator, denominator) -> {size: `analysis.lengths.Trend`}."""
    pairs = [p for p, per in trends.items() if per]
    cols = min(2, max(1, len(pairs)))
    rows = max(1, -(-len(pairs) // cols))
    fig = Figure(figsize=(5.8 * cols, 4.2 * rows))
    axes = np.atleast_1d(fig.subplots(rows, cols)).ravel()
    for ax in axes[len(pairs):] if pairs else ():
        ax.set_axis_off()
    if not pairs:
        axes[0].text(0.5, 0.5, "no ratio: no size trained by both families of a pair", transform=axes[0].transAxes,
                     ha="center", va="center", fontsize=8)
        axes[0].set_axis_off()
        return fig
    sizes = sorted({n for p in pairs for n in trends[p]})
    cmap = colormaps["viridis"]
    shade = {n: cmap(i / max(1, len(sizes) - 1) * 0.9) for i, n in enumerate(sizes)}
    for ax, (a, b) in zip(axes, pairs):
        for k, (n, t) in enumerate(sorted(trends[(a, b)].items())):
            x = np.array([r.at for r in t.ratios], float) * (1 + 0.03 * (k - (len(sizes) - 1) / 2))  # side by side
            y = np.array([r.estimate.value for r in t.ratios], float)
            lo = np.array([r.estimate.low if r.estimate.has_interval else v for r, v in zip(t.ratios, y)], float)
            hi = np.array([r.estimate.high if r.estimate.has_interval else v for r, v in zip(t.ratios, y)], float)
            ax.errorbar(x, y, yerr=[y - lo, hi - y], color=shade[n], marker="o", markersize=4, capsize=3,
                        label=f"n = {n:,}")
        ax.axhline(1.0, color="grey", linewidth=0.8)
        ax.set(xscale="log", xlabel="training length [steps]", ylabel=f"{a} ÷ {b} best loss",
               title=f"{a} ÷ {b} vs training length")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7, title=f"training-set size ({level:.0%} intervals)", title_fontsize=7)
        log_ticks(ax, "x")
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:,.0f}"))   # plain step counts
    fig.tight_layout()
    return fig


def save_all(frame: pd.DataFrame, laws: dict[str, FamilyLaws], out: str | Path, *,
             loss_label: str, budgets=(), formats=FORMATS, compute_label: str = COMPUTE_LABEL) -> list[Path]:
    """Draw every figure into `out` (created if needed); returns the files written."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    figures = {
        "loss_vs_compute": loss_vs_compute(frame, laws, loss_label=loss_label, compute_label=compute_label),
        "isoflop": isoflop_curves(frame, laws, loss_label=loss_label),
        "allocation": allocation(frame, laws, budgets=budgets, compute_label=compute_label),
    }
    written = []
    for name, fig in figures.items():
        for fmt in formats:
            path = out / f"{name}.{fmt}"
            fig.savefig(path, dpi=150)
            written.append(path)
    return written
