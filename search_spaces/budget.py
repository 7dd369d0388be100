"""Budget maths shared by the families' spaces: FLOP bounds from step limits, steps from a shape, width solving.

A training budget C buys steps = floor(C / (3 * F_fwd * batch)) steps of a shape whose forward pass costs
F_fwd FLOPs per sample. The step limits [min_steps, max_steps] therefore bound F_fwd to
[C / (3 * batch * max_steps), C / (3 * batch * min_steps)]; a space suggests (depth, F_fwd), picks the
size on the family's grid whose F_fwd is nearest (in log) inside those bounds, and recomputes the steps.
Flooring loses less than 1/min_steps of the budget, so with min_steps >= 100 every trial uses 99-100% of C.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Callable

from study.errors import ConfigError


def flops_bounds(budget: float, *, batch_size: int, min_steps: int, max_steps: int) -> tuple[float, float]:
    """The forward FLOPs per sample that keep the step count within [min_steps, max_steps]."""
    return budget / (3 * batch_size * max_steps), budget / (3 * batch_size * min_steps)


def steps_for(budget: float, flops_per_sample: float, batch_size: int) -> int:
    """Whole training steps the budget buys: floor(C / (3 * F_fwd * batch))."""
    return math.floor(budget / (3 * flops_per_sample * batch_size))


def training_flops(flops_per_sample: float, batch_size: int, steps: int) -> float:
    """FLOPs of a training run: 3 x forward (forward + backward) per sample seen."""
    return 3.0 * flops_per_sample * batch_size * steps


@dataclass(frozen=True)
class BudgetSpace:
    """A family's define-by-run space: depth, forward FLOPs (log scale), learning rate; size solved from them.

    `sizes` are candidate values of the size parameter (increasing; those the family rejects are dropped);
    `shape(size, depth)` is the model shape.
    The suggested distributions depend only on (budget, config), so they never change within a study.
    """

    family: str
    depths: tuple[int, int]                      # inclusive range of depths the space may suggest
    sizes: tuple[int, ...]                       # candidate sizes, increasing (invalid shapes are dropped)
    shape: Callable[[int, int], dict]            # (size, depth) -> shape kwargs of build_model

    def flops(self, size: int, depth: int, bodies: int) -> float:
        """Analytic forward FLOPs per sample of the shape (size, depth)."""
        return _forward_flops(self.family, bodies, tuple(sorted(self.shape(size, depth).items())))

    def _bounds(self, budget: float, config) -> tuple[float, float]:
        t = config.training
        return flops_bounds(budget, batch_size=t.batch_size, min_steps=t.min_steps, max_steps=t.max_steps)

    def grid(self) -> tuple[int, ...]:
        """The sizes whose shapes the family accepts (e.g. divisible by their number of heads)."""
        return _valid_sizes(self)

    def feasible(self, budget: float, config) -> dict[int, list[tuple[float, int]]]:
        """depth -> [(F_fwd, size)] of the grid shapes whose step count lies within the limits."""
        return _feasible(self, float(budget), config)

    def _feasible(self, budget: float, config) -> dict[int, list[tuple[float, int]]]:
        lo, hi = self._bounds(budget, config)
        table = {}
        for depth in range(self.depths[0], self.depths[1] + 1):
            options = []
            for size in self.grid():
                f = self.flops(size, depth, config.data.bodies)
                if f > hi:
                    break  # F_fwd grows with size
                if f >= lo:
                    options.append((f, size))
            if options:
                table[depth] = options
        return table

    def check_budget(self, budget: float, config) -> None:
        """ConfigError naming the budget when no shape of the family fits it within the step limits."""
        if not math.isfinite(budget) or budget <= 0:
            raise ConfigError(f"budget must be a positive number of FLOPs, got {budget:g}")
        if self.feasible(budget, config):
            return
        t, bodies = config.training, config.data.bodies
        smallest = self.flops(self.grid()[0], self.depths[0], bodies)
        need = training_flops(smallest, t.batch_size, t.min_steps)
        if budget < need:
            raise ConfigError(
                f"budget {budget:.3g} FLOPs is too small for the smallest {self.family} shape "
                f"{self.shape(self.grid()[0], self.depths[0])} (needs >= {need:.3g} for {t.min_steps} steps "
                f"of batch {t.batch_size})"
            )
        raise ConfigError(
            f"budget {budget:.3g} FLOPs has no {self.family} shape within {t.min_steps}..{t.max_steps} steps "
            f"(too large for the largest shape, or the step range is too narrow for the size grid)"
        )

    def __call__(self, trial, *, budget: float, config) -> dict:
        """Suggest depth, forward FLOPs and lr; return the derived constants (shape, steps, FLOPs used)."""
        t = config.training
        table = self.feasible(budget, config)
        if not table:
            self.check_budget(budget, config)
        depths = sorted(table)
        f_lo = min(f for options in table.values() for f, _ in options)
        f_hi = max(f for options in table.values() for f, _ in options)
        depth = trial.suggest_int("depth", depths[0], depths[-1])
        target = trial.suggest_float("fwd_flops", f_lo, f_hi, log=True)
        trial.suggest_float("lr", t.lr_min, t.lr_max, log=True)
        if depth not in table:  # a gap of the discrete grid at this budget: the nearest feasible depth
            depth = min(depths, key=lambda d: (abs(d - depth), d))
        flops, size = min(table[depth], key=lambda option: abs(math.log(option[0] / target)))
        steps = steps_for(budget, flops, t.batch_size)
        shape = self.shape(size, depth)
        return {
            "shape": shape,
            "steps": steps,
            "batch_size": t.batch_size,
            "flops_per_sample": flops,
            "flops_used": training_flops(flops, t.batch_size, steps),
            "params": _param_count(self.family, tuple(sorted(shape.items()))),
        }


@lru_cache(maxsize=256)
def _feasible(space: BudgetSpace, budget: float, config) -> dict[int, list[tuple[float, int]]]:
    return space._feasible(budget, config)


@lru_cache(maxsize=64)
def _valid_sizes(space: BudgetSpace) -> tuple[int, ...]:
    from study.errors import ConfigError
    from study.models import validate_shape

    valid = []
    for size in space.sizes:
        try:
            validate_shape(space.family, **space.shape(size, space.depths[0]))
        except ConfigError:
            continue
        valid.append(size)
    return tuple(valid)


@lru_cache(maxsize=65536)
def _forward_flops(family: str, bodies: int, shape: tuple) -> float:
    from study.benchmark.format import MARKERS
    from study.flops import forward_flops

    return float(forward_flops(family, bodies=bodies, markers=MARKERS, **dict(shape)))


@lru_cache(maxsize=65536)
def _param_count(family: str, shape: tuple) -> int:
    from study.flops import param_count

    return int(param_count(family, **dict(shape)))
