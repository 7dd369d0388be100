"""What a run will cost before it starts: training FLOPs still to run and a wall-time estimate.

A study that already has COMPLETE trials in the storage is timed at the rate they reached: their FLOPs per
slot-second (a stacked trial's seconds are its share of its group's), a study without any at the rate of
its family's nearest budget that has some. Small runs are dominated by a fixed cost per step, so that rate
varies tenfold between budgets (1.9-38 GFLOP/s per slot in the second CPU confirmation study), which no single
utilisation captures. Studies of a family with no trials yet divide their FLOPs by this machine's measured
float32 matmul rate per thread, the threads of one trial and a utilisation (0.3, an optimistic guess).
Either way the FLOPs are divided among the concurrent trial slots; on a cluster they come from
`max_concurrent` (or are unknown before connecting: then one machine's).
With a time cap (`training.time_cap_seconds`) it also counts the runs expected to pass the cap (their study's
mean seconds per trial, or their FLOPs at one trial's threads): those would stop early and FAIL.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, field

import torch
from optuna.trial import TrialState

from study.schema import FLOPS_USED, STACKED_WITH, WALL_SECONDS
from study.spec import RunSpec

UTILISATION = 0.3
CONFIRM_HOURS = 12.0   # `equiscale run` asks for --yes above this estimate


@dataclass(frozen=True)
class Estimate:
    trials: int          # trials still to run
    flops: float         # their training FLOPs
    seconds: float       # estimated wall time
    peak_per_thread: float
    slots: int
    over_cap: int = 0            # of `trials`, those expected to pass the time cap
    time_cap: float = math.inf   # the run's time cap in seconds (inf: none)
    measured: int = 0            # of `trials`, those timed at the rate stored trials reached
    per_trial: dict = field(default_factory=dict)   # study -> expected slot-seconds per trial

    def line(self) -> str:
        cap = (f"; {self.over_cap} of them expected past the time cap of {self.time_cap:g} s"
               if math.isfinite(self.time_cap) else "")
        guessed = self.trials - self.measured
        how = []
        if self.measured:
            how.append(f"{self.measured} at the rate their family's stored trials reached")
        if guessed or not self.measured:
            how.append(f"{guessed} at {UTILISATION:.0%} of {self.peak_per_thread / 1e9:.0f} GFLOP/s per thread")
        return (f"{self.trials} trial(s) to run, {self.flops:.3g} training FLOPs, about {_duration(self.seconds)} "
                f"on {self.slots} slot(s) ({', '.join(how)})" + cap)


def matmul_rate(*, threads: int = 1, size: int = 1024, repeats: int = 8) -> float:
    """Float32 matmul FLOP/s with `threads` threads on this machine (best of three short timings)."""
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        a, b = torch.randn(size, size), torch.randn(size, size)
        a @ b
        best = 0.0
        for _ in range(3):
            start = time.perf_counter()
            for _ in range(repeats):
                a @ b
            best = max(best, 2 * size**3 * repeats / (time.perf_counter() - start))
        return best
    finally:
        torch.set_num_threads(before)


@dataclass(frozen=True)
class Measured:
    """What one study's COMPLETE trials cost: FLOPs per slot-second and wall seconds per trial (a stacked trial's:
    its group's)."""

    rate: float
    seconds_per_trial: float


def measured(trials) -> Measured | None:
    """The cost `trials` (one study's) reached, from their stored FLOPs and wall seconds (a stacked trial stores
    its share of its group's, so the shares add up to the slot's seconds); None without a COMPLETE trial that
    recorded both."""
    flops = slot_seconds = wall = 0.0
    n = 0
    for t in trials:
        attrs = t.user_attrs
        if t.state != TrialState.COMPLETE or not attrs.get(WALL_SECONDS) or FLOPS_USED not in attrs:
            continue
        flops += float(attrs[FLOPS_USED])
        slot_seconds += float(attrs[WALL_SECONDS])
        wall += float(attrs[WALL_SECONDS]) * (1 + len(attrs.get(STACKED_WITH, ())))
        n += 1
    return Measured(flops / slot_seconds, wall / n) if n else None


def _nearest(spec, costs: dict[str, Measured], run: RunSpec) -> Measured | None:
    """`spec`'s own measured cost, or that of its family's study with the nearest budget (in log) that has one (the
    smaller of two equally near: small runs reach the lower rate, so the estimate errs long)."""
    same = [s for s in run.studies if s.family_name == spec.family_name and costs.get(s.name)]
    if not same:
        return None
    return costs[min(same, key=lambda s: (abs(math.log(s.budget / spec.budget)), s.budget)).name]


def estimate(run: RunSpec, *, remaining: dict[str, int] | None = None, rate: float | None = None,
             stored: dict[str, list] | None = None) -> Estimate:
    """The cost of the trials `run` still needs: `remaining` per study, as `study.resume.remaining_trials` counts
    them (a study it does not name needs its whole target); `stored`: each study's trials in the storage
    (`study.resume.stored_trials`), whose measured cost times the studies of families that have some."""
    remaining = {spec: (remaining or {}).get(spec.name, spec.trials) for spec in run.studies}
    flops = sum(n * spec.budget for spec, n in remaining.items())
    r = run.resources
    threads = max(1, int(r.cpus_per_trial))
    slots = r.max_concurrent or max(1, int((os.cpu_count() or 1) // r.cpus_per_trial))
    rate = matmul_rate() if rate is None else rate
    costs = {name: measured(trials) for name, trials in (stored or {}).items()}
    per_trial = {}
    over = timed = 0
    for spec, n in remaining.items():
        cost = _nearest(spec, costs, run)
        if cost is None:
            per_trial[spec.name] = trial_seconds = spec.budget / (rate * threads * UTILISATION)
        else:
            per_trial[spec.name] = spec.budget / cost.rate
            trial_seconds = cost.seconds_per_trial
            timed += n
        if trial_seconds > spec.optimiser.time_cap_seconds:
            over += n
    slot_seconds = sum(n * per_trial[spec.name] for spec, n in remaining.items())
    caps = [spec.optimiser.time_cap_seconds for spec in run.studies]
    return Estimate(trials=sum(remaining.values()), flops=flops, seconds=slot_seconds / slots, peak_per_thread=rate,
                    slots=slots, over_cap=over, time_cap=min(caps, default=math.inf), measured=timed,
                    per_trial=per_trial)


def _duration(seconds: float) -> str:
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    if seconds < 48 * 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.0f} days"
