"""Points: the trials of one (shape, learning rate) at one budget averaged over their seeds, and the
hierarchical bootstrap that resamples points within budgets and seeds within points.

A replicated study trains one point under several seeds, each its own trial with its seed stored
(`schema.SEED`). Trials of one family and budget with a stored seed and the same shape and learning rate are
one point: its loss (and test loss, compute, …) is the mean over its seeds, its seed spread their standard
deviation. A trial without a stored seed (a study from before replicates, a CSV row) is a point of its own,
so older storages are analysed exactly as before.

The IsoFLOP profile of a budget is its points at the study's rule learning rate (`schema.RULE_LR`; trials at
other learning rates are the lr sweep at the best point); a study that stores no rule lr has every point in
its profile.

One resample (`Points.draw`) draws, within each budget, as many points as the budget has, with replacement,
and for every drawn point as many of its seeds as it has, with replacement; a statistic is computed from the
drawn points' means. With one seed per point this is the bootstrap of runs within budgets that the analysis
used before (the same random numbers: the seed stage draws nothing then), so intervals of unreplicated
studies do not change. `seeds=False` leaves the seeds of each point as they are (a bootstrap that ignores
seed noise: tests/analysis/test_points.py shows that it misses the between-seed variance).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import pandas as pd

from analysis.bootstrap import _REFIT_ERRORS, cached_fit, resample
from study import schema

LR_TOLERANCE = 1e-6  # relative: a trial's lr this close to its rule lr is at the rule lr
# Averaged over a point's seeds (every other column is the same for all of them, or taken from the first).
CENTRES = ("mean", "median", "trained")   # a point's value over its seeds
LOSSES = ("loss", schema.VAL_LOSS, schema.TEST_LOSS)   # the columns a median or trained centre applies to
STALLED = 0.15   # centre "trained": a seed more than this far above its point's lowest seed stalled
AVERAGED = ("params", "samples", "steps", "flops", "loss", schema.VAL_LOSS, schema.TEST_LOSS, "executed", "nominal",
            "idealised", "seconds", "compute", "equivariance_error", "epochs")


def _shape_key(shape) -> str:
    if isinstance(shape, dict):
        return json.dumps(shape, sort_keys=True, default=str)
    return repr(shape)


def point_ids(frame: pd.DataFrame, *, group: str = "budget") -> np.ndarray:
    """Per row, the index of its point (numbered in order of first appearance): rows with a stored seed that
    share family, `group`, shape and lr are one point; a row without a seed is its own point."""
    n = len(frame)
    seeded = frame["seed"].notna().to_numpy() if "seed" in frame else np.zeros(n, bool)
    shapes = frame["shape"].tolist() if "shape" in frame else [None] * n
    lrs = frame["lr"].to_numpy(float) if "lr" in frame else np.full(n, np.nan)
    families = frame["family"].tolist() if "family" in frame else [None] * n
    groups = frame[group].tolist() if group in frame else [None] * n
    ids, seen = np.empty(n, int), {}
    for i in range(n):
        if seeded[i] and shapes[i] is not None and np.isfinite(lrs[i]):
            key = (families[i], groups[i], _shape_key(shapes[i]), f"{lrs[i]:.9g}")
        else:
            key = ("row", i)
        ids[i] = seen.setdefault(key, len(seen))
    return ids


@dataclass(frozen=True)
class Draw:
    """One resample: the point drawn as each copy, and the trial rows of every copy's drawn seeds."""

    copies: np.ndarray   # (P,) point index of each copy, grouped by budget (ascending) when drawn within budgets
    members: np.ndarray  # trial rows (`Points.trials`) of the copies' seeds, copy after copy
    offsets: np.ndarray  # where each copy's seeds start in `members`
    count: np.ndarray    # seeds of each copy


class Points:
    """A family's (or a frame's) trials grouped into points; `frame` has one row per point: the mean over its
    seeds of every AVERAGED column, the others from its first trial, `seeds` (how many), `loss_sd` and
    `test_sd` (standard deviation over seeds, ddof 1; NaN for a single seed) and `profile` (at the rule lr)."""

    def __init__(self, trials: pd.DataFrame, ids: np.ndarray, *, centre: str = "mean"):
        if centre not in CENTRES:
            raise ValueError(f"a point's centre over its seeds is one of {CENTRES}, got {centre!r}")
        self.centre = centre
        order = np.argsort(ids, kind="stable")
        self.trials = trials.iloc[order].reset_index(drop=True)
        ids = ids[order]
        self.count = np.bincount(ids)
        self.start = np.concatenate([[0], np.cumsum(self.count)[:-1]]).astype(int)
        self._values: dict[str, np.ndarray] = {}
        first = self.trials.iloc[self.start].reset_index(drop=True)
        for col in AVERAGED:
            if col in self.trials:
                first[col] = self._reduce(col, self.value(col), self.start, self.count)
        first["seeds"] = self.count
        first["loss_sd"] = self._sd("loss")
        first["test_sd"] = self._sd(schema.TEST_LOSS) if schema.TEST_LOSS in self.trials else np.nan
        first["profile"] = _at_rule(first)
        self.frame = first

    @classmethod
    def of(cls, frame: pd.DataFrame, *, group: str = "budget", centre: str = "mean") -> "Points":
        """The points of `frame`'s rows (see `point_ids`); a point's losses are the mean over its seeds, or with
        centre "median" their median, "trained" the mean of the seeds within STALLED of the lowest (design options of
        `benchmarks/isoflop_design.py`; the report uses the mean)."""
        return cls(frame.reset_index(drop=True), point_ids(frame, group=group), centre=centre)

    def _reduce(self, column: str, values: np.ndarray, starts: np.ndarray, counts: np.ndarray) -> np.ndarray:
        """Each group's mean of `values` (groups at `starts`, `counts` long), or for a loss column its median (centre
        "median") or its trained seeds' mean (centre "trained", `trained_mean`)."""
        if self.centre == "median" and column in LOSSES:
            return np.array([np.median(values[s:s + c]) for s, c in zip(starts, counts)])
        if self.centre == "trained" and column in LOSSES:
            return np.array([trained_mean(values[s:s + c]) for s, c in zip(starts, counts)])
        return np.add.reduceat(values, starts) / counts

    @classmethod
    def from_arrays(cls, budget, loss, *, compute=None, test=None) -> "Points":
        """Every (budget, loss) its own point (runs without replicates)."""
        budget = np.asarray(budget, float)
        frame = pd.DataFrame({"budget": budget, "loss": np.asarray(loss, float),
                              "compute": budget if compute is None else np.asarray(compute, float),
                              schema.TEST_LOSS: np.full(budget.size, np.nan) if test is None else np.asarray(test, float)})
        return cls(frame, np.arange(budget.size))

    def value(self, column: str) -> np.ndarray:
        """The trials' `column` as floats (cached)."""
        if column not in self._values:
            self._values[column] = self.trials[column].to_numpy(float)
        return self._values[column]

    def _sd(self, column: str) -> np.ndarray:
        v, out = self.value(column), np.full(self.count.size, np.nan)
        for i in np.flatnonzero(self.count > 1):
            out[i] = np.std(v[self.start[i]:self.start[i] + self.count[i]], ddof=1)
        return out

    def __len__(self) -> int:
        return len(self.frame)

    @property
    def replicated(self) -> bool:
        """Whether any point has more than one seed."""
        return bool((self.count > 1).any())

    def subset(self, keep) -> "Points":
        """The points where `keep` (one bool per point) holds, in their order."""
        keep = np.asarray(keep, bool)
        rows = np.concatenate([np.arange(s, s + k) for s, k in zip(self.start[keep], self.count[keep])] or [[]]).astype(int)
        return Points(self.trials.iloc[rows].reset_index(drop=True), np.repeat(np.arange(keep.sum()), self.count[keep]),
                      centre=self.centre)

    def profile(self) -> "Points":
        """The IsoFLOP profile: the points at the rule learning rate (all points where none is stored)."""
        return self if self.frame["profile"].all() else self.subset(self.frame["profile"].to_numpy(bool))

    def seeds_of(self, copies: np.ndarray, rng: np.random.Generator, *, seeds: bool = True) -> Draw:
        """The seed stage of a resample for the drawn `copies`: each copy's seeds drawn with replacement, as
        many as it has (no random numbers are used when every copy has one seed, or `seeds` is False)."""
        copies = np.asarray(copies, int)
        n = self.count[copies]
        offsets = np.concatenate([[0], np.cumsum(n)[:-1]]).astype(int)
        total = int(n.sum())
        if seeds and (n > 1).any():
            within = np.floor(rng.random(total) * np.repeat(n, n)).astype(int)
        else:
            within = np.arange(total) - np.repeat(offsets, n)
        return Draw(copies, np.repeat(self.start[copies], n) + within, offsets, n)

    def draw(self, rng: np.random.Generator, *, by: str | None = "budget", seeds: bool = True) -> Draw:
        """One hierarchical resample: points within each `by` group (None: among all points), then seeds
        within each drawn point."""
        groups = None if by is None else self.frame[by].to_numpy()
        return self.seeds_of(resample(len(self.frame), rng, groups=groups), rng, seeds=seeds)

    def mean(self, draw: Draw, column: str) -> np.ndarray:
        """Each copy's mean of `column` over its drawn seeds (its median for a loss with centre "median")."""
        return self._reduce(column, self.value(column)[draw.members], draw.offsets, draw.count)

    def drawn(self, draw: Draw, columns=("budget", "params", "samples", "loss", "compute")) -> pd.DataFrame:
        """The copies of a resample as a frame: AVERAGED columns are the means over the drawn seeds."""
        out = {}
        for col in columns:
            if col not in self.frame:
                continue
            out[col] = self.mean(draw, col) if col in AVERAGED else self.frame[col].to_numpy()[draw.copies]
        return pd.DataFrame(out)


def stalled(losses: np.ndarray) -> np.ndarray:
    """Per seed of one point: whether it stalled, i.e. ended more than STALLED (relative) above the point's lowest."""
    return losses > np.min(losses) * (1.0 + STALLED)


def trained_mean(losses: np.ndarray) -> float:
    """The mean over the seeds that trained (not `stalled`); NaN stays NaN. Each loss column is judged on its own
    values (a design option for the simulated loss): a report using it would have to judge the test losses by the
    validation losses' stalls."""
    return float(np.mean(losses[~stalled(losses)])) if np.isfinite(np.min(losses)) else float(np.mean(losses))


def _at_rule(frame: pd.DataFrame) -> np.ndarray:
    """Per point: at its study's rule lr (True where no rule lr is stored)."""
    if "rule_lr" not in frame or "lr" not in frame:
        return np.ones(len(frame), bool)
    rule, lr = frame["rule_lr"].to_numpy(float), frame["lr"].to_numpy(float)
    with np.errstate(invalid="ignore"):
        return ~np.isfinite(rule) | (np.abs(lr - rule) <= LR_TOLERANCE * np.abs(rule))


def best_per_group(group: np.ndarray, loss: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(group values ascending, index of the lowest loss in each: the first of equals)."""
    group, loss = np.asarray(group, float), np.asarray(loss, float)
    values = np.unique(group)
    idx = np.array([np.flatnonzero(group == g)[np.argmin(loss[group == g])] for g in values], int)
    return values, idx


def bootstrap_best(fit, points: Points, n_boot: int, seed: int, *, on_axis: bool = False, seeds: bool = True) -> dict:
    """Refit `fit(x, best mean loss per budget) -> dict` on n_boot hierarchical resamples; x = the budgets, or
    (on_axis) the compute of each budget's best drawn point. Equal draws are fitted once; a resample that
    cannot be fitted gives NaN."""
    rng = np.random.default_rng(seed)
    budget = points.frame["budget"].to_numpy(float)
    cache, draws = {}, []
    for _ in range(n_boot):
        d = points.draw(rng, seeds=seeds)
        loss = points.mean(d, "loss")
        values, idx = best_per_group(budget[d.copies], loss)
        x = points.mean(d, "compute")[idx] if on_axis else values
        best = loss[idx]
        draws.append(cached_fit(cache, fit, x, best))
    return _collect(draws)


def bootstrap_points(fn, points: Points, n_boot: int, seed: int, *, columns=("budget", "params", "samples", "loss",
                                                                            "compute"), seeds: bool = True) -> dict:
    """Refit `fn(frame of drawn points) -> dict of floats` on n_boot hierarchical resamples (points within
    budgets, seeds within points); a resample that cannot be fitted gives NaN."""
    rng = np.random.default_rng(seed)
    draws = []
    for _ in range(n_boot):
        frame = points.drawn(points.draw(rng, seeds=seeds), columns)
        try:
            draws.append(fn(frame))
        except _REFIT_ERRORS:
            draws.append(None)
    return _collect(draws)


def _collect(draws: list) -> dict:
    keys = next((d.keys() for d in draws if d is not None), [])
    return {k: np.array([np.nan if d is None else d[k] for d in draws], float) for k in keys}


def bootstrap_parametric_points(points: Points, fit, *, n_boot: int, seed: int = 0, chunk: int = 50) -> dict:
    """L(N, D) refitted to n_boot hierarchical resamples of the points (drawn among all of the family's points,
    as Approach 3 resamples runs, and seeds within each drawn point): each resample's point means are its own
    data set, refitted from the all-points optimum by the batched Levenberg–Marquardt (`P.minimise_batch`); a
    resample it leaves unconverged is finished by L-BFGS (NaN if that fails). Returns draws of E, A, B, alpha,
    beta."""
    from analysis import parametric as P

    rng = np.random.default_rng(seed)
    data = {k: [] for k in ("params", "samples", "loss")}
    for _ in range(n_boot):
        d = points.draw(rng, by=None)
        for k in data:
            data[k].append(np.log(points.mean(d, k)))
    if not n_boot:
        return {}
    logn, logd, logl = (np.array(data[k]) for k in ("params", "samples", "loss"))
    parts = []
    for i in range(0, n_boot, chunk):
        ln, ld, ll = logn[i:i + chunk], logd[i:i + chunk], logl[i:i + chunk]
        theta, ok = P.minimise_batch(np.repeat(fit.theta[None], len(ln), axis=0), ln, ld, ll, np.ones_like(ll))
        for j in np.flatnonzero(~ok):
            polished, _, _ = P.minimise_from(theta[j][None], ln[j], ld[j], ll[j], options=P.POLISH_OPTIONS)
            theta[j] = np.nan if polished is None else polished
        parts.append(theta)
    t = np.concatenate(parts)
    with np.errstate(over="ignore"):
        return {"A": np.exp(t[:, 0]), "B": np.exp(t[:, 1]), "E": np.exp(t[:, 2]), "alpha": t[:, 3], "beta": t[:, 4]}
