"""What a run will cost before it starts: training FLOPs still to run and a wall-time estimate.

The wall time divides those FLOPs by this machine's measured float32 matmul rate per thread, the
threads of one trial, the concurrent trial slots and a utilisation (the fraction of the peak a study
reaches end to end; 0.3 is what the CPU study measured, see benchmarks/study_utilisation.py). On a
cluster the slots come from `max_concurrent` (or are unknown before connecting: then one machine's).
With a time cap (`training.time_cap_seconds`) it also counts the runs whose own estimate (their FLOPs at one
trial's threads) passes the cap: those would stop early and FAIL.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass

import torch

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

    def line(self) -> str:
        cap = (f"; {self.over_cap} of them expected past the time cap of {self.time_cap:g} s"
               if math.isfinite(self.time_cap) else "")
        return (f"{self.trials} trial(s) to run, {self.flops:.3g} training FLOPs, about {_duration(self.seconds)} "
                f"({self.slots} slot(s) at {UTILISATION:.0%} of {self.peak_per_thread / 1e9:.0f} GFLOP/s per thread)"
                + cap)


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


def estimate(run: RunSpec, *, remaining: dict[str, int] | None = None, rate: float | None = None) -> Estimate:
    """The cost of the trials `run` still needs: `remaining` per study, as `study.resume.remaining_trials` counts
    them (a study it does not name needs its whole target)."""
    remaining = {spec: (remaining or {}).get(spec.name, spec.trials) for spec in run.studies}
    flops = sum(n * spec.budget for spec, n in remaining.items())
    r = run.resources
    threads = max(1, int(r.cpus_per_trial))
    slots = r.max_concurrent or max(1, int((os.cpu_count() or 1) // r.cpus_per_trial))
    rate = matmul_rate() if rate is None else rate
    seconds = flops / (rate * threads * slots * UTILISATION)
    caps = [spec.optimiser.time_cap_seconds for spec in run.studies]
    over = sum(n for spec, n in remaining.items()
               if spec.budget / (rate * threads * UTILISATION) > spec.optimiser.time_cap_seconds)
    return Estimate(trials=sum(remaining.values()), flops=flops, seconds=seconds, peak_per_thread=rate, slots=slots,
                    over_cap=over, time_cap=min(caps, default=math.inf))


def _duration(seconds: float) -> str:
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    if seconds < 48 * 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.0f} days"
