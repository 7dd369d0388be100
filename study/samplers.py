"""The built-in samplers (`study.plugins.Sampler`, entry points `equiscale.samplers`): TPE and the IsoFLOP grid.

A sampler plugin makes the Optuna sampler of one study from its `StudySpec` and a seed (fixed by the study,
how many trials it already has and the run's seed, so a resumed study gets a fresh but reproducible one).
"""

from __future__ import annotations

from dataclasses import dataclass

import optuna


@dataclass(frozen=True)
class TPE:
    """Optuna's TPE with the constant liar, so that parallel trials spread out."""

    name: str = "tpe"
    counts_points: bool = False

    def make(self, spec, *, seed: int) -> optuna.samplers.BaseSampler:
        return optuna.samplers.TPESampler(seed=seed, constant_liar=True)


@dataclass(frozen=True)
class Grid:
    """The study space's grid of `spec.trials` points (an IsoFLOP profile; a data study: learning rates). The
    target counts distinct points, and a point whose trial failed is handed out again."""

    name: str = "grid"
    counts_points: bool = True

    def make(self, spec, *, seed: int) -> optuna.samplers.BaseSampler:
        from study.adapter import GridSampler

        return GridSampler(spec.space.grid(spec, spec.trials), seed=seed)


tpe = TPE()
grid = Grid()
