"""The space of a data study: one fixed shape and step count; only the learning rate is searched.

Each (family, training-set size) study tunes the peak learning rate in the family's `lr_range`
(`training.lr_ranges`): TPE suggests it, or sampler "grid" tries `trials` log-spaced values.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from search_spaces.budget import Proposal, _forward_flops, _param_count, _step_flops


@dataclass(frozen=True)
class FixedShapeSpace:
    """Define-by-run space of one data study: `space(trial, budget=…, config=…) -> Proposal`."""

    family: str

    def __call__(self, trial, *, budget: float, config) -> Proposal:
        shape = config.data_study.shape(self.family)
        lr = trial.suggest_float("lr", *config.training.lr_range(self.family), log=True)
        batch, bodies, key = config.training.batch_size, config.data.bodies, tuple(sorted(shape.items()))
        return Proposal(shape=shape, lr=lr, steps=config.data_study.steps, batch_size=batch,
                        step_flops=_step_flops(self.family, batch, bodies, key),
                        forward_flops=_forward_flops(self.family, bodies, key), params=_param_count(self.family, key))

    def lr_grid(self, config, points: int) -> dict[str, list[float]]:
        """A grid for `optuna.samplers.GridSampler`: `points` learning rates log-spaced over the family's range."""
        lo, hi = config.training.lr_range(self.family)
        if points == 1 or lo == hi:
            return {"lr": [math.sqrt(lo * hi)]}
        ratio = (hi / lo) ** (1 / (points - 1))
        return {"lr": [lo * ratio**i for i in range(points)]}
