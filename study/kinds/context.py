"""What a study kind resolves its studies from: the run's families, budgets, training settings, task and sampler,
already loaded and validated (never the config itself)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping

from study.sections import TrainingConfig
from study.spec import Optimiser, StudySpec


@dataclass(frozen=True, eq=False)
class KindContext:
    """The resolved inputs of one run, for `Kind.validate`, `Kind.studies` and `Kind.record`."""

    families: tuple[Any, ...]           # study.plugins.Family objects, in run order
    spaces: Mapping[str, Any]           # family name -> its search space (compute studies)
    budgets: tuple[float, ...]
    trials: int
    seed: int
    sampler: Any                        # study.plugins.Sampler
    training: TrainingConfig
    task: Any                           # study.plugins.Task
    task_settings: Any
    section: Any = None                 # the kind's own parsed table (None: it has none)
    known: frozenset = frozenset()      # every family name the run could name (installed or given a path)
    sampler_settings: Any = None        # the sampler's own parsed table (None: its defaults)

    @property
    def sample(self) -> dict[str, int]:
        """The task's sample dimensions."""
        return dict(self.task.sample_dims(self.task_settings))

    def _aligned(self, budget: float) -> int | None:
        """The index into the per-budget lists for one of the run's budgets: that of the nearest aligned
        budget (log scale); None for a budget outside the run (it takes the run-wide settings)."""
        return nearest(self.training.aligned_budgets or self.budgets, budget) if budget in self.budgets else None

    def batch_size_for(self, budget: float) -> int:
        """The batch size at `budget`: its `training.batch_sizes` entry, else batch_size."""
        t, i = self.training, self._aligned(budget)
        return t.batch_sizes[i] if t.batch_sizes and i is not None else t.batch_size

    def step_range_for(self, family: str, budget: float) -> tuple[int, int]:
        """The step limits of `family`'s trials at `budget`: its `budget_step_ranges` entry, else its `step_range`."""
        per_budget, i = dict(self.training.budget_step_ranges).get(family), self._aligned(budget)
        return per_budget[i] if per_budget and i is not None else self.training.step_range(family)

    def lr_range_for(self, family: str, budget: float) -> tuple[float, float]:
        """The learning-rate range `family` searches at `budget` (its range at that budget's batch size)."""
        return self.training.lr_range(family, batch=self.batch_size_for(budget))

    def spec(self, *, name: str, family: Any, kind: str, budget: float, batch_size: int, space: Any,
             lr_range: tuple[float, float], **rest: Any) -> StudySpec:
        """A StudySpec with the run-wide fields (task, sampler, target, seed, optimiser) filled in."""
        t = self.training
        return StudySpec(
            name=name, family=family, kind=kind, budget=float(budget), batch_size=int(batch_size), space=space,
            sampler=self.sampler, task=self.task, sample=self.sample, trials=self.trials, seed=self.seed,
            lr_range=lr_range, grid_depth=t.grid_depth, sampler_settings=self.sampler_settings,
            optimiser=Optimiser(weight_decay=t.weight_decay, warmup_fraction=t.warmup_fraction,
                                grad_clip=t.grad_clip, evals=t.evals, val_samples=t.val_samples,
                                checkpoint_seconds=t.checkpoint_seconds,
                                time_cap_seconds=t.time_cap_seconds or math.inf),
            **rest)


def nearest(budgets: tuple[float, ...], budget: float) -> int:
    """The index of the budget nearest to `budget` on a log scale (the first of equals)."""
    def distance(i: int) -> float:
        return abs(math.log(budgets[i] / budget)) if budget > 0 and math.isfinite(budget) else 0.0
    return min(range(len(budgets)), key=distance)
