"""What replicates and the lr sweep show: each family's seed spread per budget, and the learning rate of every
reported optimum (lr_opt per budget, lr_opt ∝ C^γ with a bootstrap interval, and whether the optimum's lr lies
strictly inside the learning rates tried at it).

The best point of a budget's IsoFLOP profile (`analysis.points`: lowest mean over seeds at the rule lr) is
where an adaptive study sweeps the learning rate; its points at other learning rates are that sweep. When
later replicates move the best mean to another point, the sweep stays where it was trained (the profile's
shape with the most learning rates tried) and the report names both. lr_opt of
the budget is the sweep's best learning rate (lowest mean loss over seeds). The interval of γ comes from the
hierarchical bootstrap: within each budget's sweep, learning-rate points drawn with replacement and seeds
within each drawn point (the shape stays the reported optimum's: the sweep was trained there only).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from analysis.bootstrap import LEVEL, Estimate, estimate
from analysis.points import Points, _shape_key

MIN_BUDGETS = 3  # budgets with a sweep (at least 2 learning rates) needed for lr_opt ∝ C^γ
INSIDE_TOLERANCE = 1e-6   # relative: an lr this close to the end of the lrs tried is at that end


def lr_inside(lr: float, tried) -> bool:
    """lr strictly between the lowest and the highest of `tried`."""
    return bool(lr > min(tried) * (1 + INSIDE_TOLERANCE) and lr < max(tried) * (1 - INSIDE_TOLERANCE))


@dataclass(frozen=True)
class SeedSpread:
    """One family's seed spread at one budget."""

    budget: float
    points: int             # points at this budget
    replicated: int         # of which with more than one seed
    best_n: float           # the best point (lowest mean over seeds, any lr)
    best_lr: float
    best_seeds: int
    best_mean: float
    best_sd: float          # standard deviation over the best point's seeds (ddof 1; NaN for one seed)
    pooled_rel_sd: float    # pooled relative standard deviation over the replicated points (NaN: none)
    max_rel_range: float    # largest (max − min) / mean over seeds of one point

    @property
    def best_rel_sd(self) -> float:
        return self.best_sd / self.best_mean if np.isfinite(self.best_sd) else float("nan")


def seed_spread(points: Points) -> list[SeedSpread]:
    """Per budget (ascending), the seed spread of a family's points."""
    out = []
    values = points.value("loss")
    for budget in sorted(points.frame["budget"].unique()):
        rows = np.flatnonzero(points.frame["budget"].to_numpy() == budget)
        f = points.frame.iloc[rows]
        best = rows[int(np.argmin(f["loss"].to_numpy(float)))]
        rep = [i for i in rows if points.count[i] > 1]
        num = den = 0.0
        ranges = []
        for i in rep:
            seeds = values[points.start[i]:points.start[i] + points.count[i]]
            num += (seeds.size - 1) * (np.std(seeds, ddof=1) / seeds.mean()) ** 2
            den += seeds.size - 1
            ranges.append(np.ptp(seeds) / seeds.mean())
        row = points.frame.iloc[best]
        out.append(SeedSpread(float(budget), len(rows), len(rep), float(row["params"]), float(row.get("lr", np.nan)),
                              int(row["seeds"]), float(row["loss"]), float(row["loss_sd"]),
                              float(np.sqrt(num / den)) if den else float("nan"),
                              float(max(ranges)) if ranges else float("nan")))
    return out


@dataclass(frozen=True)
class LrSweep:
    """The learning rates tried at one budget's reported optimum (the best profile point's shape)."""

    budget: float
    x: float                   # the budget, or the compute of the optimum at its best lr on another axis
    params: float
    tried: tuple[float, ...]   # learning rates tried at that shape, ascending
    losses: tuple[float, ...]  # their mean losses over seeds
    seeds: tuple[int, ...]
    best_lr: float
    rows: tuple[int, ...]      # the sweep's points (indices into `Points.frame`), in `tried` order
    profile_best: float = float("nan")  # N of the profile's best point (≠ params: the sweep was at another point)

    @property
    def inside(self) -> bool:
        """The best lr lies strictly inside the learning rates tried (neither the lowest nor the highest)."""
        return lr_inside(self.best_lr, self.tried)

    def why_not_inside(self) -> str:
        if self.inside:
            return ""
        if len(self.tried) < 2:
            return f"only lr {self.best_lr:.3g} was tried at the optimum"
        edge = "lowest" if self.best_lr <= self.tried[0] * (1 + INSIDE_TOLERANCE) else "highest"
        return f"best lr {self.best_lr:.3g} is the {edge} of {', '.join(f'{v:.3g}' for v in self.tried)}"


def lr_sweeps(points: Points, *, on_axis: bool = False) -> list[LrSweep]:
    """Per budget (ascending), the learning rates tried at its reported optimum and the best of them."""
    f = points.frame
    keys = np.array([_shape_key(s) for s in f["shape"]]) if "shape" in f else np.array([""] * len(f))
    profile = f["profile"].to_numpy(bool)
    out = []
    for budget in sorted(f["budget"].unique()):
        at = f["budget"].to_numpy() == budget
        candidates = np.flatnonzero(at & profile) if (at & profile).any() else np.flatnonzero(at)
        best = candidates[int(np.argmin(f["loss"].to_numpy(float)[candidates]))]
        profile_best = float(f["params"].iloc[best])
        if "shape" in f and f["shape"].iloc[best] is not None:   # the sweep: the shape with the most lrs tried
            tried = {k: int((at & (keys == k)).sum()) for k in keys[candidates]}
            most = max(tried.values())
            if tried[keys[best]] < most:
                best = min((i for i in candidates if tried[keys[i]] == most), key=lambda i: f["loss"].iloc[i])
            same = np.flatnonzero(at & (keys == keys[best]) & np.isfinite(f["lr"].to_numpy(float)))
        else:
            same = np.array([best])
        if same.size == 0:
            same = np.array([best])
        lrs = f["lr"].to_numpy(float)[same]
        order = np.argsort(lrs, kind="stable")
        same = same[order]
        losses = f["loss"].to_numpy(float)[same]
        top = same[int(np.argmin(losses))]
        x = float(budget) if not on_axis else float(f["compute"].iloc[top])
        out.append(LrSweep(float(budget), x, float(f["params"].iloc[best]), tuple(float(v) for v in f["lr"].to_numpy(float)[same]),
                           tuple(float(v) for v in losses), tuple(int(v) for v in f["seeds"].to_numpy()[same]),
                           float(f["lr"].iloc[top]), tuple(int(i) for i in same), profile_best))
    return out


@dataclass
class LrLaw:
    """lr_opt = coef·C^γ through the budgets with a sweep, with bootstrap intervals, or why not."""

    sweeps: list[LrSweep]
    gamma: Estimate
    coef: Estimate
    used: tuple[float, ...] = ()   # budgets with a sweep (≥ 2 learning rates at the optimum)
    problem: str = ""

    @property
    def not_inside(self) -> list[LrSweep]:
        return [s for s in self.sweeps if not s.inside]


def fit_lr_law(points: Points, *, n_boot: int = 200, seed: int = 0, level: float = LEVEL,
               on_axis: bool = False) -> LrLaw:
    """lr_opt ∝ C^γ through every budget whose optimum has a sweep (least squares in log-log), with the
    hierarchical bootstrap of the sweeps (learning-rate points within each sweep, seeds within each point)."""
    sweeps = lr_sweeps(points, on_axis=on_axis)
    used = [s for s in sweeps if len(s.tried) >= 2]
    if len(used) < MIN_BUDGETS:
        why = (f"needs an lr sweep (at least 2 learning rates at the optimum) at {MIN_BUDGETS} budgets, got "
               f"{len(used)}")
        return LrLaw(sweeps, Estimate(float("nan"), problem=why), Estimate(float("nan"), problem=why),
                     tuple(s.budget for s in used), why)
    x = np.log([s.x for s in used])
    slope, intercept = np.polyfit(x, np.log([s.best_lr for s in used]), 1)
    rng = np.random.default_rng(seed)
    lrs = points.frame["lr"].to_numpy(float)
    draws = []
    for _ in range(n_boot):
        best, xs = [], []
        for s in used:
            rows = np.array(s.rows)
            d = points.seeds_of(rows[rng.integers(0, rows.size, rows.size)], rng)
            means = points.mean(d, "loss")
            j = int(np.argmin(means))
            best.append(lrs[d.copies[j]])
            xs.append(points.mean(d, "compute")[j] if on_axis else s.x)
        draws.append(np.polyfit(np.log(xs), np.log(best), 1))
    draws = np.array(draws).reshape(-1, 2)
    gamma = estimate(slope, draws[:, 0], level=level) if n_boot else Estimate(float(slope))
    coef = estimate(np.exp(intercept), np.exp(draws[:, 1]), level=level, positive=True) if n_boot else \
        Estimate(float(np.exp(intercept)))
    return LrLaw(sweeps, gamma, coef, tuple(s.budget for s in used))
