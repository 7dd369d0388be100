"""Budget maths shared by the families' spaces: FLOP bounds from step limits, steps from a shape, size solving.

A training budget C buys steps = floor(C / S) steps of a shape whose training step costs S FLOPs
(`study.flops.step_flops`). The step limits [min_steps, max_steps] (the family's own `budget_step_ranges` or
`step_ranges` entry where the config has one) therefore bound S to
[C / max_steps, C / min_steps]; a space suggests (depth, S), picks the size on the family's grid whose S
is nearest (in log) inside those bounds, and recomputes the steps. Flooring loses less than 1/min_steps
of the budget, so with min_steps >= 100 every trial uses 99-100% of C.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Callable

from study.errors import ConfigError
from study.flops import forward_flops, param_count, step_flops
from study.models import validate_shape


def steps_for(budget: float, flops_per_step: float) -> int:
    """Whole training steps the budget buys: floor(C / S)."""
    return math.floor(budget / flops_per_step)


@dataclass(frozen=True)
class Proposal:
    """What a space derives from one trial's suggestions: the shape to train and what the budget buys."""

    shape: dict
    lr: float
    steps: int
    batch_size: int
    step_flops: float       # training FLOPs of one step (the budget unit)
    forward_flops: float    # forward FLOPs of one sample (the nominal count's unit)
    params: int


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

    def flops(self, size: int, depth: int, budget: float, config) -> float:
        """Training FLOPs of one step of the shape (size, depth) at the budget's batch size."""
        return _step_flops(self.family, config.batch_size_for(budget), config.data.bodies,
                           tuple(sorted(self.shape(size, depth).items())))

    def _bounds(self, budget: float, config) -> tuple[float, float]:
        """The step FLOPs that keep the step count within the family's [min_steps, max_steps]."""
        lo, hi = config.step_range_for(self.family, budget)
        return budget / hi, budget / lo

    def grid(self) -> tuple[int, ...]:
        """The sizes whose shapes the family accepts (e.g. divisible by their number of heads)."""
        return _valid_sizes(self)

    def feasible(self, budget: float, config) -> dict[int, list[tuple[float, int]]]:
        """depth -> [(S, size)] of the grid shapes whose step count lies within the limits."""
        return _feasible(self, float(budget), config)

    def _feasible(self, budget: float, config) -> dict[int, list[tuple[float, int]]]:
        lo, hi = self._bounds(budget, config)
        table = {}
        for depth in range(self.depths[0], self.depths[1] + 1):
            options = []
            for size in self.grid():
                f = self.flops(size, depth, budget, config)
                if f > hi:
                    break  # S grows with size
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
        lo, hi = config.step_range_for(self.family, budget)
        batch = config.batch_size_for(budget)
        need = self.flops(self.grid()[0], self.depths[0], budget, config) * lo
        if budget < need:
            raise ConfigError(
                f"budget {budget:.3g} FLOPs is too small for the smallest {self.family} shape "
                f"{self.shape(self.grid()[0], self.depths[0])} (needs >= {need:.3g} for {lo} steps "
                f"of batch {batch})"
            )
        raise ConfigError(
            f"budget {budget:.3g} FLOPs has no {self.family} shape within {lo}..{hi} steps "
            f"(too large for the largest shape, or the step range is too narrow for the size grid)"
        )

    def isoflop_grid(self, budget: float, config, points: int) -> dict[str, list]:
        """An IsoFLOP grid for `optuna.samplers.GridSampler`: `points` sizes log-spaced over the feasible
        FLOP range at depth `training.grid_depth`, one learning rate (the geometric mean of the range)."""
        t = config.training
        table = self.feasible(budget, config)
        if t.grid_depth not in table:
            steps_lo, steps_hi = config.step_range_for(self.family, budget)
            raise ConfigError(
                f"sampler 'grid': no {self.family} shape of depth {t.grid_depth} fits budget {budget:.3g} within "
                f"{steps_lo}..{steps_hi} steps (feasible depths: {sorted(table) or 'none'})")
        unit = 3 * config.batch_size_for(budget)
        lo, hi = table[t.grid_depth][0][0] / unit, table[t.grid_depth][-1][0] / unit
        if points > 1 and len(table[t.grid_depth]) < points:
            raise ConfigError(f"sampler 'grid': only {len(table[t.grid_depth])} {self.family} sizes of depth "
                              f"{t.grid_depth} fit budget {budget:.3g}, fewer than {points} trials")
        ratio = (hi / lo) ** (1 / max(1, points - 1))
        flops = [lo * ratio**i for i in range(points)] if points > 1 else [math.sqrt(lo * hi)]
        lr_lo, lr_hi = config.lr_range_for(self.family, budget)
        return {"depth": [t.grid_depth], "fwd_flops": [min(max(f, lo), hi) for f in flops],
                "lr": [math.sqrt(lr_lo * lr_hi)]}

    def __call__(self, trial, *, budget: float, config) -> Proposal:
        """Suggest depth, FLOPs per sample and lr; return the derived proposal (shape, steps, FLOPs)."""
        t = config.training
        table = self.feasible(budget, config)
        if not table:
            self.check_budget(budget, config)
        depths = sorted(table)
        # The suggested parameter stays "fwd_flops" (the name stored since 0.1), now in units of the
        # step FLOPs divided by 3 x batch, so that stored studies keep one distribution.
        unit = 3 * config.batch_size_for(budget)
        f_lo = min(f for options in table.values() for f, _ in options) / unit
        f_hi = max(f for options in table.values() for f, _ in options) / unit
        depth = trial.suggest_int("depth", depths[0], depths[-1])
        target = trial.suggest_float("fwd_flops", f_lo, f_hi, log=True) * unit
        lr = trial.suggest_float("lr", *config.lr_range_for(self.family, budget), log=True)
        if depth not in table:  # a gap of the discrete grid at this budget: the nearest feasible depth
            depth = min(depths, key=lambda d: (abs(d - depth), d))
        flops, size = min(table[depth], key=lambda option: abs(math.log(option[0] / target)))
        shape = self.shape(size, depth)
        key = tuple(sorted(shape.items()))
        return Proposal(shape=shape, lr=lr, steps=steps_for(budget, flops),
                        batch_size=config.batch_size_for(budget),
                        step_flops=flops, forward_flops=_forward_flops(self.family, config.data.bodies, key),
                        params=_param_count(self.family, key))


@lru_cache(maxsize=256)
def _feasible(space: BudgetSpace, budget: float, config) -> dict[int, list[tuple[float, int]]]:
    return space._feasible(budget, config)


@lru_cache(maxsize=64)
def _valid_sizes(space: BudgetSpace) -> tuple[int, ...]:
    valid = []
    for size in space.sizes:
        try:
            validate_shape(space.family, **space.shape(size, space.depths[0]))
        except ConfigError:
            continue
        valid.append(size)
    return tuple(valid)


@lru_cache(maxsize=65536)
def _step_flops(family: str, batch_size: int, bodies: int, shape: tuple) -> float:
    return float(step_flops(family, batch_size=batch_size, bodies=bodies, **dict(shape)))


@lru_cache(maxsize=65536)
def _forward_flops(family: str, bodies: int, shape: tuple) -> float:
    return float(forward_flops(family, bodies=bodies, **dict(shape)))


@lru_cache(maxsize=65536)
def _param_count(family: str, shape: tuple) -> int:
    return int(param_count(family, **dict(shape)))
