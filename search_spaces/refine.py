"""Adaptive IsoFLOP refinement: which point a budget's study trains next, decided from what it already holds.

The decision is a pure function of the study's trials (trained and running), so a resumed study takes up
exactly where it stopped and never trains a point twice by accident. Points are sizes of the study space's
grid at depth `spec.grid_depth`, the profile is trained at the family's rule learning rate (the geometric mean
of the study's lr range), and a study goes through five phases:

1. **coarse**: `start` sizes log-spaced over the middle `coarse_fraction` of the feasible FLOP range;
2. **extend**: while the best point (mean over seeds) is the smallest or the largest trained, one coarse step
   beyond it, as long as the step limits allow (a limit that stops it is noted);
3. **refine**: once bracketed, the geometric midpoint between the best and each neighbour, until both neighbours
   are within `refine_decades` of it in log10 N (or the grid has nothing between them, or `max_points`); then,
   with `flank` > 0, the flanks: a profile size within half a gap of each target log10 N(best) ± j·gap,
   j = 1 … `flank`, gap = `flank_decades` (packed into less where the step limits leave less room on a side;
   a target with no ladder size within half a gap is noted and skipped), so that a bootstrap that draws points
   with replacement keeps points on each side of the best (benchmarks/isoflop_design.py);
4. **lr**: at the best point, learning rates `lr_factor` times below and above the rule, extended (at most
   `lr_extend` times, within the lr range) while the best of them is the lowest or highest tried, so that the
   learning rate of the reported optimum lies strictly inside the range searched at it;
5. **replicate**: `seeds` trials (each its own seed) at the best point's best learning rate and at the best
   point and its two neighbours at the rule learning rate (`replicate = 1`: at the best point only); with
   `replicate_best`, then at the point with the lowest mean loss at any learning rate (the report's best point)
   until it has `seeds` seeds, again while seeding moves that title to a point with fewer.

`cap` bounds the trials of a study (trained and running); reaching it ends the study with a note.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import ClassVar

LR_TOLERANCE = 1e-9     # relative: two learning rates this close are the same


@dataclass(frozen=True)
class RefineSettings:
    """The study file's `[isoflop]` table."""

    start: int = 5                  # coarse points
    coarse_fraction: float = 0.6    # the coarse grid spans this middle fraction of the feasible log-FLOP range
    refine_decades: float = 0.15    # stop refining once both neighbours are this close to the best in log10 N
    max_points: int = 10            # distinct sizes per budget
    lr_factor: float = 2.0          # the lr sweep's ratio
    lr_extend: int = 2              # extensions of the lr sweep beyond rule / factor and rule × factor
    seeds: int = 3                  # trials (seeds) at each replicated point
    cap: int = 24                   # trials per budget
    # Added after the committed study ran: stored with a study's settings only when not at these defaults, so that
    # studies stored before them resume (`OMIT_AT_DEFAULT`; so these defaults must never change).
    flank: int = 0                  # profile sizes wanted on each side of the best (0: none beyond refine)
    flank_decades: float = 0.25     # their spacing in log10 N
    replicate: int = 3              # profile points replicated at the rule lr: the best and its neighbours (3) or it (1)
    replicate_best: bool = False    # then seed the lowest mean at any lr (e.g. an lr-sweep point) to `seeds` seeds

    OMIT_AT_DEFAULT: ClassVar[tuple[str, ...]] = ("flank", "flank_decades", "replicate", "replicate_best")


@dataclass(frozen=True)
class Observation:
    """One trial of the study: its size, learning rate, and loss (None while running)."""

    size: int
    lr: float
    value: float | None


@dataclass(frozen=True)
class Decision:
    """What to train next: `propose` (size, lr) pairs; `wait` for running trials; `done`. `notes` say why."""

    propose: tuple[tuple[int, float], ...] = ()
    wait: bool = False
    done: bool = False
    phase: str = ""
    notes: tuple[str, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class Ladder:
    """The sizes a study can train (increasing FLOPs), their step FLOPs and parameter counts."""

    sizes: tuple[int, ...]
    flops: tuple[float, ...]        # step FLOPs, increasing
    params: tuple[int, ...]

    def index(self, size: int) -> int:
        return self.sizes.index(size)

    def nearest(self, log_flops: float) -> int:
        """The size whose log step FLOPs is nearest."""
        return self.sizes[min(range(len(self.sizes)), key=lambda i: abs(math.log(self.flops[i]) - log_flops))]

    def log_n(self, size: int) -> float:
        return math.log10(self.params[self.index(size)])


def coarse_sizes(ladder: Ladder, settings: RefineSettings) -> tuple[list[int], float]:
    """The coarse grid's sizes and its step (a ratio of step FLOPs)."""
    lo, hi = math.log(ladder.flops[0]), math.log(ladder.flops[-1])
    margin = (1 - settings.coarse_fraction) / 2 * (hi - lo)
    a, b = lo + margin, hi - margin
    n = settings.start
    targets = [a + (b - a) * i / (n - 1) for i in range(n)] if n > 1 else [(a + b) / 2]
    sizes = []
    for t in targets:
        size = ladder.nearest(t)
        if size not in sizes:
            sizes.append(size)
    step = math.exp((b - a) / max(1, n - 1))
    return sizes, step


def decide(ladder: Ladder, settings: RefineSettings, trials: list[Observation], *, lr_rule: float,
           lr_range: tuple[float, float]) -> Decision:
    """The next move of one study (see the module docstring)."""
    running = [t for t in trials if t.value is None]
    if len(trials) >= settings.cap:
        return Decision(wait=bool(running), done=not running, phase="cap",
                        notes=(f"trial cap {settings.cap} reached",))
    profile = _means(trials, lr_rule)                 # size -> (mean loss, n) at the rule lr
    in_flight = {(t.size, _lr_key(t.lr)) for t in running}
    coarse, step = coarse_sizes(ladder, settings)
    notes: list[str] = []
    sizes = set(profile) | {t.size for t in running if _same_lr(t.lr, lr_rule)}   # distinct profile sizes

    # 1. coarse
    missing = [s for s in coarse if s not in profile and (s, _lr_key(lr_rule)) not in in_flight]
    if missing:
        return Decision(propose=((missing[0], lr_rule),), phase="coarse")
    if any(s not in profile for s in coarse):
        return Decision(wait=True, phase="coarse")
    profile_running = any(_same_lr(t.lr, lr_rule) and t.size not in profile for t in running)

    # 2. extend
    best = min(profile, key=lambda s: profile[s][0])
    trained = sorted(profile, key=ladder.index)
    if best in (trained[0], trained[-1]) and not _bracketed(best, trained, ladder):
        direction = -1 if best == trained[0] else 1
        target = ladder.nearest(math.log(ladder.flops[ladder.index(best)]) + direction * math.log(step))
        if target == best and 0 <= ladder.index(best) + direction < len(ladder.sizes):
            target = ladder.sizes[ladder.index(best) + direction]     # a sparse ladder's next size is > one step away
        if target == best or target in profile:   # the step limits stop it: the grid's end is already trained
            notes.append(f"best point at the {'smallest' if direction < 0 else 'largest'} size the step limits "
                         f"allow: not bracketed")
        elif (target, _lr_key(lr_rule)) in in_flight:
            return Decision(wait=True, phase="extend")
        elif len(sizes) < settings.max_points:
            return Decision(propose=((target, lr_rule),), phase="extend")
        else:
            notes.append(f"{settings.max_points} points reached before the minimum was bracketed")
    if profile_running and not _bracketed(best, trained, ladder):
        return Decision(wait=True, phase="extend", notes=tuple(notes))

    # 3. refine
    if _bracketed(best, trained, ladder):
        i = trained.index(best)
        proposals, waiting = [], False
        for neighbour in (trained[i - 1], trained[i + 1]):
            if abs(ladder.log_n(neighbour) - ladder.log_n(best)) <= settings.refine_decades:
                continue
            mid = ladder.nearest((math.log(ladder.flops[ladder.index(best)])
                                  + math.log(ladder.flops[ladder.index(neighbour)])) / 2)
            if mid in (best, neighbour) or mid in profile:
                continue                                  # nothing on the grid between them
            if (mid, _lr_key(lr_rule)) in in_flight:
                waiting = True
            elif len(sizes) + len(proposals) < settings.max_points:
                proposals.append((mid, lr_rule))
        if proposals:
            return Decision(propose=tuple(proposals), phase="refine")
        if waiting:
            return Decision(wait=True, phase="refine")
        proposals, flank_notes = _flank(ladder, settings, best, sizes, lr_rule)
        notes += flank_notes
        if proposals:
            return Decision(propose=proposals, phase="flank", notes=tuple(notes))
    if profile_running:       # a profile point still running may move the best: decide the lr after it
        return Decision(wait=True, phase="refine", notes=tuple(notes))

    # 4. lr at the best point
    at_best = _by_lr(trials, best)                    # lr key -> (lr, mean, n)
    lo, hi = lr_range
    wanted = [lr_rule / settings.lr_factor, lr_rule * settings.lr_factor]
    proposals = [(best, lr) for lr in wanted if lo * (1 - LR_TOLERANCE) <= lr <= hi * (1 + LR_TOLERANCE)
                 and _lr_key(lr) not in at_best and (best, _lr_key(lr)) not in in_flight]
    if proposals:
        return Decision(propose=tuple(proposals), phase="lr")
    if any(t.size == best and not _same_lr(t.lr, lr_rule) for t in running):
        return Decision(wait=True, phase="lr")
    best_lr = min(at_best.values(), key=lambda v: v[1])[0]
    tried = sorted(v[0] for v in at_best.values())
    extensions = sum(1 for lr in tried if lr < lr_rule / settings.lr_factor * (1 - LR_TOLERANCE)
                     or lr > lr_rule * settings.lr_factor * (1 + LR_TOLERANCE))
    if _same_lr(best_lr, tried[0]) or _same_lr(best_lr, tried[-1]):
        nxt = best_lr / settings.lr_factor if _same_lr(best_lr, tried[0]) else best_lr * settings.lr_factor
        if not lo * (1 - LR_TOLERANCE) <= nxt <= hi * (1 + LR_TOLERANCE):
            notes.append(f"best lr {best_lr:.3g} at the edge of the lr range [{lo:.3g}, {hi:.3g}]")
        elif extensions >= settings.lr_extend:
            notes.append(f"best lr {best_lr:.3g} still at the edge after {extensions} extensions")
        else:
            return Decision(propose=((best, nxt),), phase="lr", notes=tuple(notes))

    # 5. replicate
    i = trained.index(best)
    around = trained[max(0, i - 1):i + 2] if settings.replicate >= 3 else [best]
    points = [(best, best_lr)] + [(s, lr_rule) for s in around]
    proposals = []
    counts = {}
    for t in trials:
        key = (t.size, _lr_key(t.lr))
        counts[key] = counts.get(key, 0) + 1
    room = settings.cap - len(trials)
    for size, lr in dict.fromkeys(points):     # in order, without repeats
        have = counts.get((size, _lr_key(lr)), 0)
        for _ in range(max(0, settings.seeds - have)):
            if len(proposals) < room:
                proposals.append((size, lr))
    if proposals:
        return Decision(propose=tuple(proposals), phase="replicate", notes=tuple(notes))
    if settings.replicate_best and not running:      # decided on finished trials only: seeds move the means
        means = {(size, lr): mean for size in {t.size for t in trials}
                 for lr, mean, _ in _by_lr(trials, size).values()}          # every (size, lr) point's mean
        (size, lr), _ = min(means.items(), key=lambda kv: kv[1])
        have = counts.get((size, _lr_key(lr)), 0)
        if have < settings.seeds:                    # room > 0: the cap returned above
            return Decision(propose=((size, lr),) * min(settings.seeds - have, room), phase="replicate",
                            notes=tuple(notes))
    return Decision(wait=bool(running), done=not running, phase="done", notes=tuple(notes))


def _flank(ladder: Ladder, settings: RefineSettings, best: int, sizes: set[int],
           lr_rule: float) -> tuple[tuple[tuple[int, float], ...], list[str]]:
    """The flank sizes still to train. On each side of the best, `flank` targets log10 N(best) ± j·gap
    (j = 1 … flank), gap = `flank_decades`, or less where the ladder's end (the step limits) leaves less room
    than flank · gap: then the targets are packed evenly into that room. A target with a profile size (trained or
    running) within half a gap is met; otherwise the ladder's nearest size, unless it lies further than half a
    gap from the target or is the best (noted). Within `max_points`. Returns (proposals, notes)."""
    centre, logs = ladder.log_n(best), [ladder.log_n(s) for s in ladder.sizes]
    proposals: list[tuple[int, float]] = []
    notes: list[str] = []
    taken = {ladder.log_n(s) for s in sizes}
    for direction, edge in ((-1, logs[0]), (1, logs[-1])):
        side = "below" if direction < 0 else "above"
        room = abs(edge - centre)
        reach = min(settings.flank * settings.flank_decades, room)
        if reach < 1e-9:
            notes.append(f"no flank {side} the best: it is the ladder's {'smallest' if direction < 0 else 'largest'} "
                         f"size (the step limits)")
            continue
        gap = reach / settings.flank
        if reach < settings.flank * settings.flank_decades:
            notes.append(f"flank {side} the best packed into the {room:.2f} decades the step limits leave")
        for j in range(1, settings.flank + 1):
            target = centre + direction * j * gap
            if any(abs(t - target) <= gap / 2 + 1e-12 for t in taken):
                continue
            k = min(range(len(logs)), key=lambda i: abs(logs[i] - target))
            if abs(logs[k] - target) > gap / 2 + 1e-12 or ladder.sizes[k] == best:
                notes.append(f"no size within {gap / 2:.3g} decades of log10 N = {target:.2f} ({side} the best)")
                continue
            if len(sizes) + len(proposals) >= settings.max_points:
                notes.append(f"{settings.max_points} points reached before the flanks were complete")
                return tuple(proposals), notes
            proposals.append((ladder.sizes[k], lr_rule))
            taken.add(logs[k])
    return tuple(proposals), notes


def _bracketed(best: int, trained: list[int], ladder: Ladder) -> bool:
    """The one bracketing rule: the best point has a trained point on each side."""
    i = trained.index(best)
    return 0 < i < len(trained) - 1


def _lr_key(lr: float) -> float:
    return float(f"{lr:.9g}")


def _same_lr(a: float, b: float) -> bool:
    return abs(a - b) <= LR_TOLERANCE * max(abs(a), abs(b))


def _means(trials: list[Observation], lr: float) -> dict[int, tuple[float, int]]:
    """size -> (mean loss, trials) of the finished trials at `lr`."""
    groups: dict[int, list[float]] = {}
    for t in trials:
        if t.value is not None and _same_lr(t.lr, lr):
            groups.setdefault(t.size, []).append(t.value)
    return {s: (sum(v) / len(v), len(v)) for s, v in groups.items()}


def _by_lr(trials: list[Observation], size: int) -> dict[float, tuple[float, float, int]]:
    """lr key -> (lr, mean loss, trials) of the finished trials at `size`."""
    groups: dict[float, list] = {}
    for t in trials:
        if t.value is not None and t.size == size:
            groups.setdefault(_lr_key(t.lr), [t.lr, []])[1].append(t.value)
    return {k: (lr, sum(v) / len(v), len(v)) for k, (lr, v) in groups.items()}
