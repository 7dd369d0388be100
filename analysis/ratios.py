"""Best-loss ratios between two families per budget (or per training-set size), with bootstrap intervals.

The ratio at a group (a budget, a training-set size) is the numerator family's lowest point loss there (the mean
over the point's seeds, `analysis.points`) divided by the denominator's. A resample draws each family's points
of that group with replacement (as many as it has) and, within each drawn point, its seeds with replacement,
and takes the ratio of the two lowest means, as the L(C) fit resamples its best point per budget: the interval
reflects which point happens to be best and the seed-to-seed noise of its mean. Runs without replicates are
points of their own (then the interval reflects which run is best). With a single point of one seed of either
family at a group there is nothing to resample: the ratio has no interval.

Runs are selected on one loss (`loss`, validation) and the same selected runs' other loss (`report`, test)
is reported beside it (`Ratio.test`).

On a compute axis other than executed FLOPs (`analysis.axes`) the two families' best runs of one stored
budget no longer cost the same, so `frontier_ratios` compares at equal compute on the axis: the numerator's
best run of each budget against the denominator's best-run frontier (log loss linear in log compute between
its budgets' best runs) at the same compute; outside that frontier's range there is no ratio.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from analysis.bootstrap import LEVEL, Estimate, estimate
from analysis.points import Points
from study import schema


@dataclass(frozen=True)
class Ratio:
    """numerator ÷ denominator best loss at one group value, with its interval."""

    at: float
    numerator: str
    denominator: str
    estimate: Estimate
    best_numerator: float
    best_denominator: float
    runs: tuple[int, int] = (0, 0)  # runs of the numerator and the denominator family at this group
    test: Estimate | None = None  # the same selected runs' test-loss ratio
    budget: float = float("nan")  # the numerator's stored budget (frontier ratios; `at` is then its compute)
    outside: str = ""  # non-empty: no ratio, `at` lies outside the denominator's trained compute (why)
    draws: np.ndarray = field(default_factory=lambda: np.empty(0), compare=False, repr=False)  # (n_boot,) resampled ratios

    def why_no_interval(self) -> str:
        """'' when the ratio has an interval (or is not identified), else why it has none."""
        if self.estimate.problem or self.estimate.has_interval:
            return ""
        return "a single run of one family: no interval" if min(self.runs) < 2 else "no bootstrap: no interval"

    def verdict(self) -> str:
        """'lower' (interval below 1), 'higher' (above 1), 'undecided' (contains 1 or no interval)."""
        e = self.estimate
        if e.problem or not e.has_interval:
            return "undecided"
        return "lower" if e.high < 1 else "higher" if e.low > 1 else "undecided"


def _values(part: pd.DataFrame, column: str) -> np.ndarray:
    return part[column].to_numpy(float) if column in part else np.full(len(part), np.nan)


def _mean(points: Points, draw, column: str) -> np.ndarray:
    return points.mean(draw, column) if column in points.trials else np.full(len(draw.copies), np.nan)


def _resamplable(points: Points, by: str) -> bool:
    """Every group of `by` has more than one point or a point with more than one seed."""
    f = points.frame
    return bool(((f.groupby(by).size() > 1) | (f.groupby(by)["seeds"].max() > 1)).all())


def best_ratios(frame: pd.DataFrame, *, by: str, numerator: str, denominator: str, n_boot: int = 200,
                seed: int = 0, level: float = LEVEL, loss: str = "loss", report: str = schema.TEST_LOSS,
                draw_points: bool = True) -> list[Ratio]:
    """A `Ratio` at every value of `by` where both families have runs (columns family, `by`, `loss`), and
    the ratio of the `report` losses of the same selected points (`Ratio.test`, when the column has values).
    Replicates (rows with a stored `seed`, same shape and lr) are averaged into points; the bootstrap draws
    points within the group and seeds within each drawn point (`analysis.points`). draw_points=False: every
    point is kept once and only its seeds are drawn (the best point re-picked in each resample; no interval
    unless a point has several seeds)."""
    num, den = (Points.of(frame[frame["family"] == f], group=by) for f in (numerator, denominator))
    shared = sorted(set(num.frame[by]) & set(den.frame[by]))
    out = []
    for i, at in enumerate(shared):
        a, b = (p.subset((p.frame[by] == at).to_numpy()) for p in (num, den))
        la, lb, ta, tb = (_values(p.frame, c) for p, c in ((a, loss), (b, loss), (a, report), (b, report)))
        rng = np.random.default_rng([seed, i])
        draws, test_draws = [], []
        go = (all(len(p) > 1 or p.replicated for p in (a, b)) if draw_points else a.replicated or b.replicated)
        for _ in range(n_boot if go else 0):
            ia, ib = ((rng.choice(len(a), len(a)), rng.choice(len(b), len(b))) if draw_points else
                      (np.arange(len(a)), np.arange(len(b))))
            da, db = a.seeds_of(ia, rng), b.seeds_of(ib, rng)
            ma, mb = a.mean(da, loss), b.mean(db, loss)
            ja, jb = int(np.argmin(ma)), int(np.argmin(mb))
            draws.append(ma[ja] / mb[jb])
            test_draws.append(_mean(a, da, report)[ja] / _mean(b, db, report)[jb])
        ja, jb = int(np.argmin(la)), int(np.argmin(lb))
        test = None
        if np.isfinite(ta[ja]) and np.isfinite(tb[jb]):
            test = estimate(ta[ja] / tb[jb], test_draws, level=level, positive=True)
        out.append(Ratio(float(at), numerator, denominator, estimate(la[ja] / lb[jb], draws, level=level, positive=True),
                         float(la[ja]), float(lb[jb]), (len(a.trials), len(b.trials)), test=test, budget=float(at),
                         draws=np.asarray(draws, float)))
    return out


def _frontier(part: pd.DataFrame, idx: np.ndarray, loss: str, report: str, x: str):
    """Per budget, the best (lowest `loss`) of the runs `idx` of `part`: (budgets, x, loss, report), by budget."""
    sub = part.iloc[idx]
    best = sub.loc[sub.groupby("budget")[loss].idxmin()] if sub.index.is_unique else None
    if best is None:  # a resample repeats rows: select by position
        values, order = sub[loss].to_numpy(float), np.argsort(sub["budget"].to_numpy(float), kind="stable")
        budgets = sub["budget"].to_numpy(float)[order]
        keep = [order[np.flatnonzero(budgets == b)[np.argmin(values[order][budgets == b])]] for b in np.unique(budgets)]
        best = sub.iloc[keep]
    best = best.sort_values("budget")
    return (best["budget"].to_numpy(float), best[x].to_numpy(float), best[loss].to_numpy(float),
            _values(best, report))


SLACK = 1.25  # a frontier is extended this factor in compute beyond its end budgets (log-linear, its end segment)


def _at(x: float, xs: np.ndarray, ys: np.ndarray) -> float:
    """y at x on the frontier (xs, ys): log y linear in log x; within SLACK beyond either end, the line from the
    end point to the nearest point at least ×SLACK away (the farthest if none is): two budgets that cost nearly
    the same (seconds on a shared machine) must not set the extrapolated slope. NaN further out."""
    order = np.argsort(xs)
    xs, ys = xs[order], ys[order]
    if xs.size < 2 or not (xs[0] / SLACK <= x <= xs[-1] * SLACK) or not np.all(np.isfinite(ys)):
        return float("nan")
    lx, ly, t = np.log(xs), np.log(ys), np.log(x)
    if xs[0] <= x <= xs[-1]:
        return float(np.exp(np.interp(t, lx, ly)))
    if x > xs[-1]:                                       # mirror the upper end onto the lower one
        lx, ly, t = -lx[::-1], ly[::-1], -t
    far = np.flatnonzero(lx - lx[0] >= np.log(SLACK))
    j = int(far[0]) if far.size else lx.size - 1
    if lx[j] == lx[0]:
        return float(ys[0] if x < xs[0] else ys[-1])
    return float(np.exp(ly[0] + (ly[j] - ly[0]) * (t - lx[0]) / (lx[j] - lx[0])))


def frontier_ratios(frame: pd.DataFrame, *, numerator: str, denominator: str, n_boot: int = 200, seed: int = 0,
                    level: float = LEVEL, loss: str = "loss", report: str = schema.TEST_LOSS, x: str = "compute") -> list[Ratio]:
    """numerator ÷ denominator best loss at equal compute `x`: one `Ratio` per numerator budget, at the
    compute of its best run, against the denominator's best runs interpolated (log-log) to that compute.
    Resamples draw points within every budget of both families and seeds within each drawn point (the compared
    compute moves with the draw)."""
    parts = [frame[frame["family"] == f].reset_index(drop=True) for f in (numerator, denominator)]
    if parts[0].empty or parts[1].empty:
        return []
    pn, pd_ = (Points.of(p) for p in parts)
    num, den = pn.frame, pd_.frame
    nb, nx, nl, nt = _frontier(num, np.arange(len(num)), loss, report, x)
    _, dx, dl, dt = _frontier(den, np.arange(len(den)), loss, report, x)
    rng = np.random.default_rng(seed)
    columns = [c for c in dict.fromkeys(("budget", loss, report, x)) if c in num]
    draws, test_draws = [], []
    few = not (_resamplable(pn, "budget") and _resamplable(pd_, "budget"))
    for _ in range(0 if few else n_boot):
        drawn = pn.drawn(pn.draw(rng), columns)
        _, bx, bl, bt = _frontier(drawn, np.arange(len(drawn)), loss, report, x)
        drawn = pd_.drawn(pd_.draw(rng), columns)
        _, cx, cl, ct = _frontier(drawn, np.arange(len(drawn)), loss, report, x)
        draws.append([bl[i] / _at(bx[i], cx, cl) for i in range(len(bx))])
        test_draws.append([bt[i] / _at(bx[i], cx, ct) for i in range(len(bx))])
    draws, test_draws = np.array(draws).reshape(-1, len(nb)), np.array(test_draws).reshape(-1, len(nb))
    out = []
    for i, budget in enumerate(nb):
        runs = (int(pn.count[num["budget"].to_numpy() == budget].sum()), int(len(pd_.trials)))
        den_loss = _at(nx[i], dx, dl)
        if not np.isfinite(den_loss):
            why = (f"{nx[i]:.3g} lies outside {denominator}'s best runs' compute on this axis "
                   f"[{dx.min():.3g}, {dx.max():.3g}] by more than ×{SLACK:g}")
            out.append(Ratio(float(nx[i]), numerator, denominator, Estimate(float("nan"), problem=why), float(nl[i]),
                             float("nan"), runs, budget=float(budget), outside=why))
            continue
        den_test = _at(nx[i], dx, dt)
        test = (estimate(nt[i] / den_test, test_draws[:, i], level=level, positive=True)
                if np.isfinite(nt[i]) and np.isfinite(den_test) else None)
        out.append(Ratio(float(nx[i]), numerator, denominator,
                         estimate(nl[i] / den_loss, draws[:, i], level=level, positive=True), float(nl[i]),
                         den_loss, runs, test=test, budget=float(budget)))
    return out
