"""Learning-rate grid with edge extension and replicates: which learning rate a data study trains next, decided
from what it already holds (sampler "lrgrid", settings in the study file's `[lrgrid]` table).

The decision is a pure function of the study's trials (trained, running, and failed for a reason a retry would
repeat), so a resumed study takes up exactly where it stopped and never trains a point twice by accident. The
grid is `points` learning rates log-spaced over the family's lr range [lo, hi]: lr_k = lo · r^k with
r = (hi / lo)^(1 / (points - 1)), k = 0 … points - 1; an extension is the next k beyond an edge (k = -1, -2, …
or points, points + 1, …). A study goes through three phases:

1. **grid**: every k = 0 … points - 1, one seed each;
2. **extend**: while the best learning rate (mean loss over its seeds) is the lowest or the highest trained,
   the next one beyond it, at most `extend` extensions in all (when the limit stops it, a note says so);
3. **replicate**: the best learning rate until it has `seeds` trials (each its own seed); if the mean over them
   moves the best elsewhere, that one is replicated in turn (and extended past an edge, within the limit).

A trial that diverged or passed its time cap counts as an infinite loss at its learning rate (it is not retried);
a study whose every point is infinite (after the extensions, which go below the lowest) ends with a note.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from search_spaces.refine import Decision, Observation

SIZE = 0   # every proposal of a data study is of its one fixed shape: `Decision.propose` pairs carry this size


@dataclass(frozen=True)
class LrGridSettings:
    """The study file's `[lrgrid]` table."""

    points: int = 5     # learning rates of the starting grid, log-spaced over the family's lr range
    extend: int = 2     # grid steps beyond an edge, at most, in all
    seeds: int = 2      # trials (seeds) at the best learning rate

    def most_trials(self) -> int:
        """Trials of a study whose best moves at most once per extension and never after replication: the grid,
        every extension, and the best's further seeds (what the pre-run estimate counts)."""
        return self.points + self.extend + self.seeds - 1


def ratio(lr_range: tuple[float, float], points: int) -> float:
    """The grid's step r between neighbouring learning rates."""
    lo, hi = lr_range
    return (hi / lo) ** (1 / (points - 1))


def grid_lr(lr_range: tuple[float, float], points: int, k: int) -> float:
    """The learning rate of grid index k (k < 0 or k >= points: an extension)."""
    return lr_range[0] * ratio(lr_range, points) ** k


def grid_index(lr_range: tuple[float, float], points: int, lr: float) -> int:
    """The grid index nearest to `lr` (log scale)."""
    return round(math.log(lr / lr_range[0]) / math.log(ratio(lr_range, points)))


def decide(settings: LrGridSettings, trials: list[Observation], *, lr_range: tuple[float, float]) -> Decision:
    """The next move of one study (see the module docstring). `trials`: one Observation per trial that counts
    (value None: running; math.inf: diverged or capped)."""
    points, lr = settings.points, (lambda k: grid_lr(lr_range, points, k))
    finished: dict[int, list[float]] = {}
    running: dict[int, int] = {}
    for t in trials:
        k = grid_index(lr_range, points, t.lr)
        if t.value is None:
            running[k] = running.get(k, 0) + 1
        else:
            finished.setdefault(k, []).append(float(t.value))

    # 1. grid
    missing = [k for k in range(points) if k not in finished and k not in running]
    if missing:
        return Decision(propose=tuple((SIZE, lr(k)) for k in missing), phase="grid")
    if any(k not in finished for k in range(points)):
        return Decision(wait=True, phase="grid")

    means = {k: sum(v) / len(v) for k, v in finished.items()}
    best = min(means, key=lambda k: (means[k], k))
    tried = set(finished) | set(running)
    extensions = sum(1 for k in tried if not 0 <= k < points)
    notes: list[str] = []

    # 2. extend
    if best in (min(finished), max(finished)):
        beyond = best - 1 if best == min(finished) else best + 1
        if beyond in running:
            return Decision(wait=True, phase="extend")
        if extensions < settings.extend:
            return Decision(propose=((SIZE, lr(beyond)),), phase="extend")
        notes.append(f"best lr {lr(best):.3g} at the {'low' if beyond < best else 'high'} edge of its grid after "
                     f"{extensions} extension(s) (extend = {settings.extend}): not inside")
    if any(k != best for k in running):     # a point still running may move the best: decide after it
        return Decision(wait=True, phase="extend", notes=tuple(notes))
    if math.isinf(means[best]):            # every learning rate tried diverged or passed the time cap
        return Decision(done=True, phase="done", notes=(*notes, "no learning rate trained to a finite loss"))

    # 3. replicate
    have = len(finished[best]) + running.get(best, 0)
    if have < settings.seeds:
        return Decision(propose=((SIZE, lr(best)),) * (settings.seeds - have), phase="replicate", notes=tuple(notes))
    if running:
        return Decision(wait=True, phase="replicate", notes=tuple(notes))
    return Decision(done=True, phase="done", notes=tuple(notes))


def still_wanted(settings: LrGridSettings, trials: list[Observation], *, lr_range: tuple[float, float]) -> int:
    """Trials a study still needs (0: done): `most_trials` less those it holds (trained or running), at least 1
    while it is not done (a best that moves after replication needs more: the searcher asks again)."""
    decision = decide(settings, trials, lr_range=lr_range)
    if decision.done:
        return 0
    return max(1, settings.most_trials() - len(trials))
