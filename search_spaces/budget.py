"""Budget maths shared by the families' spaces: FLOP bounds from step limits, steps from a shape, size solving.

A training budget C buys steps = floor(C / S) steps of a shape whose training step costs S FLOPs
(`study.flops.sample_flops` × batch). The step limits [min_steps, max_steps] of the study (`StudySpec.step_range`:
the family's own `budget_step_ranges` or `step_ranges` entry where the study file has one) therefore bound S to
[C / max_steps, C / min_steps]; a space suggests (depth, S), picks the size on the family's grid whose S
is nearest (in log) inside those bounds, and recomputes the steps. Flooring loses less than 1/min_steps
of the budget, so with min_steps >= 100 every trial uses 99-100% of C.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

from study.errors import ConfigError
from study.flops import sample_flops, sample_params
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

    `sizes` are candidate values of the size parameter (increasing; those the study's family rejects are
    dropped); `shape(size, depth)` is the model shape. Everything else comes from the `StudySpec`: budget, batch,
    step and lr ranges, the family object and the task's sample. The suggested distributions depend only on the
    spec, so they never change within a study. `family` names the family the space was written for (informative).
    """

    family: str
    depths: tuple[int, int]                      # inclusive range of depths the space may suggest
    sizes: tuple[int, ...]                       # candidate sizes, increasing (invalid shapes are dropped)
    shape: Callable[[int, int], dict]            # (size, depth) -> shape kwargs of the family

    def flops(self, size: int, depth: int, spec) -> float:
        """Training FLOPs of one step of the shape (size, depth) at the study's batch size."""
        return spec.batch_size * _costs(spec.family, _sample_key(spec), _key(self.shape(size, depth)))[1]

    def params(self, size: int, depth: int, spec) -> int:
        """Trainable parameters of the shape (size, depth) for the study's family and task."""
        return _params(spec.family, _sample_key(spec), _key(self.shape(size, depth)))

    def _bounds(self, spec) -> tuple[float, float]:
        """The step FLOPs that keep the step count within the study's [min_steps, max_steps]."""
        lo, hi = spec.step_range
        return spec.budget / hi, spec.budget / lo

    def valid_sizes(self, family) -> tuple[int, ...]:
        """The sizes whose shapes `family` accepts (e.g. divisible by their number of heads)."""
        key = (self, family.name)
        if key not in _VALID:
            _VALID[key] = _valid_sizes(self, family)
        return _VALID[key]

    def feasible(self, spec) -> dict[int, list[tuple[float, int]]]:
        """depth -> [(S, size)] of the grid shapes whose step count lies within the limits."""
        key = (self, spec.family.name, float(spec.budget), spec.batch_size, tuple(spec.step_range), _sample_key(spec))
        if key not in _FEASIBLE:
            _FEASIBLE[key] = self._feasible(spec)
        return _FEASIBLE[key]

    def _feasible(self, spec) -> dict[int, list[tuple[float, int]]]:
        lo, hi = self._bounds(spec)
        table = {}
        for depth in range(self.depths[0], self.depths[1] + 1):
            options = []
            for size in self.valid_sizes(spec.family):
                f = self.flops(size, depth, spec)
                if f > hi:
                    break  # S grows with size
                if f >= lo:
                    options.append((f, size))
            if options:
                table[depth] = options
        return table

    def check(self, spec) -> None:
        """ConfigError naming the budget when no shape of the family fits it within the step limits."""
        budget, name = spec.budget, spec.family.name
        if not math.isfinite(budget) or budget <= 0:
            raise ConfigError(f"budget must be a positive number of FLOPs, got {budget:g}")
        if self.feasible(spec):
            return
        lo, hi = spec.step_range
        sizes = self.valid_sizes(spec.family)
        if not sizes:
            raise ConfigError(f"{name}: no size of the search space gives a valid shape")
        need = self.flops(sizes[0], self.depths[0], spec) * lo
        if budget < need:
            raise ConfigError(
                f"budget {budget:.3g} FLOPs is too small for the smallest {name} shape "
                f"{self.shape(sizes[0], self.depths[0])} (needs >= {need:.3g} for {lo} steps "
                f"of batch {spec.batch_size})"
            )
        raise ConfigError(
            f"budget {budget:.3g} FLOPs has no {name} shape within {lo}..{hi} steps "
            f"(too large for the largest shape, or the step range is too narrow for the size grid)"
        )

    def grid(self, spec, points: int) -> dict[str, list]:
        """An IsoFLOP grid for `optuna.samplers.GridSampler`: `points` sizes log-spaced over the feasible
        FLOP range at depth `spec.grid_depth`, one learning rate (the geometric mean of the range)."""
        table, depth, name = self.feasible(spec), spec.grid_depth, spec.family.name
        if depth not in table:
            steps_lo, steps_hi = spec.step_range
            raise ConfigError(
                f"sampler 'grid': no {name} shape of depth {depth} fits budget {spec.budget:.3g} within "
                f"{steps_lo}..{steps_hi} steps (feasible depths: {sorted(table) or 'none'})")
        unit = 3 * spec.batch_size
        lo, hi = table[depth][0][0] / unit, table[depth][-1][0] / unit
        if points > 1 and len(table[depth]) < points:
            raise ConfigError(f"sampler 'grid': only {len(table[depth])} {name} sizes of depth "
                              f"{depth} fit budget {spec.budget:.3g}, fewer than {points} trials")
        ratio = (hi / lo) ** (1 / max(1, points - 1))
        flops = [lo * ratio**i for i in range(points)] if points > 1 else [math.sqrt(lo * hi)]
        lr_lo, lr_hi = spec.lr_range
        return {"depth": [depth], "fwd_flops": [min(max(f, lo), hi) for f in flops],
                "lr": [math.sqrt(lr_lo * lr_hi)]}

    def __call__(self, trial, spec) -> Proposal:
        """Suggest depth, FLOPs per sample and lr; return the derived proposal (shape, steps, FLOPs)."""
        table = self.feasible(spec)
        if not table:
            self.check(spec)
        depths = sorted(table)
        # The suggested parameter stays "fwd_flops" (the name stored since 0.1), now in units of the
        # step FLOPs divided by 3 x batch, so that stored studies keep one distribution.
        unit = 3 * spec.batch_size
        f_lo = min(f for options in table.values() for f, _ in options) / unit
        f_hi = max(f for options in table.values() for f, _ in options) / unit
        depth = trial.suggest_int("depth", depths[0], depths[-1])
        target = trial.suggest_float("fwd_flops", f_lo, f_hi, log=True) * unit
        lr = trial.suggest_float("lr", *spec.lr_range, log=True)
        if depth not in table:  # a gap of the discrete grid at this budget: the nearest feasible depth
            depth = min(depths, key=lambda d: (abs(d - depth), d))
        flops, size = min(table[depth], key=lambda option: abs(math.log(option[0] / target)))
        return proposal(spec, self.shape(size, depth), lr=lr, steps=steps_for(spec.budget, flops))


def proposal(spec, shape: dict, *, lr: float, steps: int) -> Proposal:
    """The proposal of training `shape` for `steps` steps at `lr` in the study `spec` (FLOPs and N counted)."""
    forward, training = _costs(spec.family, _sample_key(spec), _key(shape))
    return Proposal(shape=dict(shape), lr=lr, steps=steps, batch_size=spec.batch_size,
                    step_flops=float(spec.batch_size * training), forward_flops=float(forward),
                    params=_params(spec.family, _sample_key(spec), _key(shape)))


_VALID: dict = {}
_FEASIBLE: dict = {}
_COSTS: dict = {}
_PARAMS: dict = {}


def _key(shape: dict) -> tuple:
    return tuple(sorted(shape.items()))


def _sample_key(spec) -> tuple:
    return tuple(sorted(spec.sample.items()))


def _costs(family, sample: tuple, shape: tuple) -> tuple[int, int]:
    """(forward, forward + backward) FLOPs of one sample, cached per (family, sample, shape)."""
    key = (family.name, id(family), sample, shape)
    if key not in _COSTS:
        _COSTS[key] = sample_flops(family, dict(sample), dict(shape))
    return _COSTS[key]


def _params(family, sample: tuple, shape: tuple) -> int:
    key = (family.name, id(family), sample, shape)
    if key not in _PARAMS:
        _PARAMS[key] = sample_params(family, dict(sample), dict(shape))
    return _PARAMS[key]


def _valid_sizes(space: BudgetSpace, family) -> tuple[int, ...]:
    valid = []
    for size in space.sizes:
        try:
            validate_shape(family, **space.shape(size, space.depths[0]))
        except ConfigError:
            continue
        valid.append(size)
    return tuple(valid)
