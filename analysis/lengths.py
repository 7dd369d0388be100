"""Claim 1 by training length: per (family, training-set size, training length) the best learning rate's point,
and per size the ratio of two families' best losses at each length with its trend in the length.

A data study v2 trains every family at several lengths (`schema.STEPS`) per size, each at a log grid of learning
rates, the best with several seeds; a v1 storage has one length per size (then there is no trend). A point is one
(family, size, length, lr): the mean over its seeds (`analysis.points`). Per (family, size, length) the best lr is
the point with the lowest mean validation loss; its test loss is reported beside it, and whether the best lr lies
strictly inside the lrs trained there (`BestPoint.inside`).

Ratios numerator ÷ denominator per (size, length): the two families' best means' ratio, its interval from a
residual bootstrap that pools the seed noise. Per family, every point with >= 2 seeds gives its seeds' deviations of
log loss from their mean, each scaled by sqrt(k/(k-1)) (k its seeds, the small-sample correction), and these form one
pool (`SeedPool`; validation and test deviations of a trial drawn together); each resample adds to every lr point's
log mean the mean of k draws from its family's pool (k its seeds; 1 for a 1-seed point: it has seed noise too, it just
did not measure it) and re-picks the best lr. Assumption: the seed noise of log loss is similar across a family's
points (sizes, lengths, lrs). Why: a point's own 2 seeds drawn with replacement give zero spread half the time and
half the variance of the mean, so those intervals cover too rarely (tests/analysis/test_lengths.py measures both).
Where either family has fewer than `MIN_REPLICATED` replicated points (v1: one seed per trial), the ratio is
`analysis.ratios.best_ratios` as before: with replicates at that size each lr point's own seeds are drawn with
replacement (`draw_points=False`), without any the lr points are drawn with replacement (otherwise nothing would
vary). The trend is the least-squares slope of log(ratio) against log(length) over a size's lengths, its interval
from the same resamples (draw k at every length: the lengths' resamples are independent).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from analysis.bootstrap import LEVEL, Estimate, estimate
from analysis.points import Points
from analysis.ratios import Ratio, best_ratios
from analysis.replicates import INSIDE_TOLERANCE, lr_inside
from study import schema

SIZE = schema.TRAIN_SIZE  # the frame column of the training-set size (as in `analysis.data_efficiency`)
LENGTH = schema.STEPS     # the frame column of the training length (optimizer steps)
MIN_REPLICATED = 2        # points with >= 2 seeds a family needs for a pool of its seed noise


@dataclass(frozen=True)
class BestPoint:
    """The best learning rate of one (family, size, length): its mean losses over seeds and the lrs tried there."""

    family: str
    train_size: int
    steps: int
    lr: float
    val: float                  # mean validation (selection) loss over its seeds
    val_sd: float               # standard deviation over its seeds (ddof 1; NaN for one seed)
    test: float                 # mean test loss of the same seeds
    seeds: int
    epochs: float
    tried: tuple[float, ...]    # learning rates trained at this (family, size, length), ascending

    @property
    def inside(self) -> bool:
        """The best lr lies strictly inside the lrs tried (neither the lowest nor the highest of at least 3)."""
        return len(self.tried) >= 3 and lr_inside(self.lr, self.tried)

    def grid_text(self) -> str:
        """'inside' or why not ('lowest of 1e-3, 2e-3, 4e-3')."""
        if self.inside:
            return "inside"
        if len(self.tried) < 3:
            return f"edge: only {len(self.tried)} lr(s) tried"
        edge = "lowest" if self.lr <= self.tried[0] * (1 + INSIDE_TOLERANCE) else "highest"
        return f"edge: the {edge} of {', '.join(f'{v:.3g}' for v in self.tried)}"


def best_points(frame: pd.DataFrame) -> list[BestPoint]:
    """The best lr's point of every (family, size, length) in a data-runs frame, sorted by family, size, length."""
    out = []
    for (family, n, steps), part in frame.groupby(["family", SIZE, LENGTH], sort=True):
        points = Points.of(part, group=LENGTH).frame
        i = int(np.argmin(points["loss"].to_numpy(float)))
        row = points.iloc[i]
        tried = tuple(sorted({float(v) for v in points["lr"].to_numpy(float) if np.isfinite(v)}))
        out.append(BestPoint(str(family), int(n), int(steps), float(row["lr"]), float(row["loss"]),
                             float(row["loss_sd"]), float(row.get(schema.TEST_LOSS, np.nan)), int(row["seeds"]),
                             float(row.get("epochs", np.nan)), tried))
    return out


@dataclass(frozen=True)
class SeedPool:
    """One family's seed noise: its replicated points' deviations of log loss from their point's mean, scaled by
    sqrt(k/(k-1)) for k seeds (a draw's variance is then the point's sample variance)."""

    val: np.ndarray    # (R,) deviations of log validation loss, one per trial of a replicated point
    test: np.ndarray   # (R,) the same trials' deviations of log test loss (NaN without a test loss)
    points: int        # replicated points pooled

    @property
    def sd(self) -> float:
        """Root mean square of the pooled deviations: the seed standard deviation of log validation loss."""
        return float(np.sqrt(np.mean(self.val ** 2)))

    def means(self, points: Points, n_boot: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """(n_boot, P) resampled mean validation and test loss of every point: its observed mean × exp(the mean of
        as many pool draws as it has seeds)."""
        k = points.count                                                   # (P,)
        offsets = np.concatenate([[0], np.cumsum(k)[:-1]]).astype(int)
        idx = rng.integers(0, self.val.size, (n_boot, int(k.sum())))       # (B, Σk) trials of the pool
        shift = [np.add.reduceat(d[idx], offsets, axis=1) / k for d in (self.val, self.test)]  # (B, P) each
        return (points.frame["loss"].to_numpy(float) * np.exp(shift[0]),
                _column(points.frame, schema.TEST_LOSS) * np.exp(shift[1]))


def _column(frame: pd.DataFrame, column: str) -> np.ndarray:
    return frame[column].to_numpy(float) if column in frame else np.full(len(frame), np.nan)


def seed_pool(frame: pd.DataFrame) -> SeedPool | None:
    """The pool of one family's data-runs frame, from its points with >= 2 seeds and finite losses (a point is one
    (size, length, lr)); None with fewer than `MIN_REPLICATED` such points."""
    val, test = [], []
    for _, part in frame.groupby(SIZE, sort=True):
        points = Points.of(part, group=LENGTH)
        logs = {c: np.log(np.where(_column(points.trials, c) > 0, _column(points.trials, c), np.nan))
                for c in ("loss", schema.TEST_LOSS)}                       # (trials,) each
        for i in np.flatnonzero(points.count > 1):
            k, rows = points.count[i], slice(points.start[i], points.start[i] + points.count[i])
            v, t = logs["loss"][rows], logs[schema.TEST_LOSS][rows]
            if np.isfinite(v).all():
                val.append((v - v.mean()) * np.sqrt(k / (k - 1)))
                test.append((t - t.mean()) * np.sqrt(k / (k - 1)))
    if len(val) < MIN_REPLICATED:
        return None
    return SeedPool(np.concatenate(val), np.concatenate(test), len(val))


def pooled_ratios(frame: pd.DataFrame, pools: dict[str, SeedPool], *, numerator: str, denominator: str,
                  n_boot: int = 200, seed: int = 0, level: float = LEVEL) -> list[Ratio]:
    """A `Ratio` (numerator ÷ denominator best mean loss, test beside it) at every length of one size's frame where
    both families have points, its interval from the residual bootstrap of the two families' `pools`."""
    num, den = (Points.of(frame[frame["family"] == f], group=LENGTH) for f in (numerator, denominator))
    out = []
    for i, at in enumerate(sorted(set(num.frame[LENGTH]) & set(den.frame[LENGTH]))):
        a, b = (p.subset((p.frame[LENGTH] == at).to_numpy()) for p in (num, den))
        rng = np.random.default_rng([seed, i])
        (va, ta), (vb, tb) = pools[numerator].means(a, n_boot, rng), pools[denominator].means(b, n_boot, rng)
        rows, ja, jb = np.arange(n_boot), np.argmin(va, axis=1), np.argmin(vb, axis=1)     # (B,) each
        draws, test_draws = va[rows, ja] / vb[rows, jb], ta[rows, ja] / tb[rows, jb]
        la, lb = a.frame["loss"].to_numpy(float), b.frame["loss"].to_numpy(float)
        ia, ib = int(np.argmin(la)), int(np.argmin(lb))
        test_a, test_b = _column(a.frame, schema.TEST_LOSS)[ia], _column(b.frame, schema.TEST_LOSS)[ib]
        test = (estimate(test_a / test_b, test_draws, level=level, positive=True)
                if np.isfinite(test_a) and np.isfinite(test_b) else None)
        value = estimate(la[ia] / lb[ib], draws, level=level, positive=True)
        out.append(Ratio(float(at), numerator, denominator, value, float(la[ia]), float(lb[ib]),
                         (len(a.trials), len(b.trials)), test=test, budget=float(at), draws=draws))
    return out


@dataclass(frozen=True)
class Trend:
    """numerator ÷ denominator at one size against the training length: the ratios and the slope of log(ratio)
    against log(steps), with the design facts the claim-1 rule needs."""

    train_size: int
    ratios: tuple[Ratio, ...]   # one per length both families trained (at = steps), ascending
    slope: Estimate             # d log(ratio) / d log(steps); not identified with fewer than 2 lengths
    min_seeds: int              # fewest seeds of a best point of either family at any of these lengths

    @property
    def lengths(self) -> tuple[int, ...]:
        return tuple(int(r.at) for r in self.ratios)

    @property
    def span(self) -> float:
        """Longest ÷ shortest length (1 with one length)."""
        return self.lengths[-1] / self.lengths[0] if self.ratios else float("nan")

    @property
    def last(self) -> Ratio:
        return self.ratios[-1]


def slope_of(steps, ratios) -> float:
    """Least-squares slope of log(ratio) against log(steps)."""
    return float(np.polyfit(np.log(np.asarray(steps, float)), np.log(np.asarray(ratios, float)), 1)[0])


def trend(ratios: list[Ratio], *, train_size: int, min_seeds: int, level: float = LEVEL) -> Trend:
    """The slope of log(ratio) vs log(length) over `ratios` (one size), its interval from their draws (NaN where a
    length has no resamples: no interval)."""
    ratios = sorted(ratios, key=lambda r: r.at)
    if len(ratios) < 2:
        return Trend(train_size, tuple(ratios), Estimate(float("nan"), problem="one training length"), min_seeds)
    steps = [r.at for r in ratios]
    value = slope_of(steps, [r.estimate.value for r in ratios])
    n = min(r.draws.size for r in ratios)
    draws = np.array([slope_of(steps, [r.draws[k] for r in ratios]) for k in range(n)]) if n else []
    return Trend(train_size, tuple(ratios), estimate(value, draws, level=level), min_seeds)


@dataclass
class LengthAnalysis:
    """Best points of every (family, size, length), and per (numerator, denominator) pair and size the ratio at
    each length with its trend."""

    points: list[BestPoint]
    trends: dict[tuple[str, str], dict[int, Trend]] = field(default_factory=dict)
    pools: dict[str, SeedPool] = field(default_factory=dict)   # families whose seed noise is pooled

    def point(self, family: str, n: int, steps: int) -> BestPoint | None:
        return next((p for p in self.points if (p.family, p.train_size, p.steps) == (family, n, steps)), None)

    def lengths(self, n: int) -> list[int]:
        """Every length trained at size n (any family), ascending."""
        return sorted({p.steps for p in self.points if p.train_size == n})

    def edges(self) -> list[BestPoint]:
        """The best points whose lr is not strictly inside the lrs tried."""
        return [p for p in self.points if not p.inside]


def analyse_lengths(frame: pd.DataFrame, pairs, *, n_boot: int = 200, seed: int = 0,
                    level: float = LEVEL) -> LengthAnalysis:
    """Best points and, for each (numerator, denominator) in `pairs` with both families present, the ratio per
    (size, length) and its trend per size (rows without a stored length are left out); the intervals pool each
    family's seed noise where both families have a pool (`seed_pool`), else as `best_ratios` (module docstring)."""
    frame = frame[np.isfinite(frame[LENGTH].to_numpy(float))]
    points = best_points(frame)
    seeds = {(p.family, p.train_size, p.steps): p.seeds for p in points}
    families = set(frame["family"])
    pools = {f: pool for f in sorted({f for pair in pairs for f in pair} & families)
             if (pool := seed_pool(frame[frame["family"] == f])) is not None}
    trends = {}
    for a, b in pairs:
        if a not in families or b not in families:
            continue
        per = {}
        for n in sorted(set(frame.loc[frame["family"] == a, SIZE]) & set(frame.loc[frame["family"] == b, SIZE])):
            part = frame[frame[SIZE] == n]
            if a in pools and b in pools:
                rs = pooled_ratios(part, pools, numerator=a, denominator=b, n_boot=n_boot, seed=seed, level=level)
            else:
                replicated = Points.of(part[part["family"].isin((a, b))], group=LENGTH).replicated
                rs = best_ratios(part, by=LENGTH, numerator=a, denominator=b, n_boot=n_boot, seed=seed, level=level,
                                 draw_points=not replicated)
            if not rs:
                continue
            fewest = min(seeds[(f, int(n), int(r.at))] for r in rs for f in (a, b))
            per[int(n)] = trend(rs, train_size=int(n), min_seeds=fewest, level=level)
        trends[(a, b)] = per
    return LengthAnalysis(points, trends, pools)
