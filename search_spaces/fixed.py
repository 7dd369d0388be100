"""The space of a data study: one fixed shape and step count; only the learning rate is searched.

Each (family, training-set size) study tunes the peak learning rate in the study's `lr_range`: TPE suggests it,
or sampler "grid" tries `trials` log-spaced values.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from search_spaces.budget import Proposal, proposal


@dataclass(frozen=True)
class FixedShapeSpace:
    """Define-by-run space of one data study: `space(trial, spec) -> Proposal` for `spec.shape`, `spec.steps`."""

    def __call__(self, trial, spec) -> Proposal:
        # a sampler that goes past the lr range (sampler "lrgrid" extends its grid) says how far
        bounds = spec.sampler.lr_bounds(spec) if hasattr(spec.sampler, "lr_bounds") else spec.lr_range
        lr = trial.suggest_float("lr", *bounds, log=True)
        return proposal(spec, dict(spec.shape), lr=lr, steps=spec.steps)

    def check(self, spec) -> None:
        """Every fixed shape was validated when the study file was read."""

    def grid(self, spec, points: int) -> dict[str, list[float]]:
        """A grid for `optuna.samplers.GridSampler`: `points` learning rates log-spaced over the study's range."""
        lo, hi = spec.lr_range
        if points == 1 or lo == hi:
            return {"lr": [math.sqrt(lo * hi)]}
        ratio = (hi / lo) ** (1 / (points - 1))
        return {"lr": [lo * ratio**i for i in range(points)]}


space = FixedShapeSpace()
