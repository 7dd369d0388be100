"""The study file's `[training]` table: settings shared by every trial of a run (the lr and step ranges that bound
the search spaces, the batch sizes, the optimiser). A plain frozen dataclass that kinds and the config read."""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import partial
from typing import Any

from study.errors import ConfigError
from study.plugins.tables import int_list, parse_table, typed


@dataclass(frozen=True)
class TrainingConfig:
    """Settings shared by every trial: batch, step limits (they bound the search space), optimiser."""

    batch_size: int = 32
    min_steps: int = 300        # >= 100 so that flooring the step count loses < 1% of the budget
    max_steps: int = 12000
    lr_min: float = 1e-3
    lr_max: float = 1e-2
    warmup_fraction: float = 0.05
    weight_decay: float = 0.01
    grad_clip: float = 1.0
    evals: int = 5              # validations per run (learning-curve points)
    val_samples: int = 256      # val scenes for each periodic evaluation (0 = all); final losses use whole splits
    batch_sizes: tuple[int, ...] = ()   # one batch size per budget (aligned with `budgets`); empty: batch_size
    # per-family (family, lr_min, lr_max) overriding lr_min..lr_max (families not in a study are ignored)
    lr_ranges: tuple[tuple[str, float, float], ...] = ()
    # per-family (family, min_steps, max_steps) overriding min_steps..max_steps: where each family's IsoFLOP
    # grid lies (its optimum sits at its own step count; families not in a study are ignored)
    step_ranges: tuple[tuple[str, int, int], ...] = ()
    # per-family step limits per budget ((family, ((min_steps, max_steps), ...)), aligned with `budgets`),
    # overriding step_ranges for that family: a grid that follows the optimum where it moves with the budget
    budget_step_ranges: tuple[tuple[str, tuple[tuple[int, int], ...]], ...] = ()
    # the budgets the per-budget lists (batch_sizes, budget_step_ranges) are aligned with: the study file's
    # (empty: the config's own). Command-line budgets take the entries of the nearest of them, so the lists,
    # and the resume settings made from them, stay the file's
    aligned_budgets: tuple[float, ...] = ()
    # "sqrt": the lr ranges are for `batch_size`; a budget trained with another batch B (`batch_sizes`)
    # searches them times sqrt(B / batch_size) (Adam's square-root rule). "none": the same range at every batch
    lr_batch_scaling: str = "none"
    # per-family (family, scaling) overriding lr_batch_scaling: e.g. GATr's best lr barely moves with the batch
    lr_batch_scalings: tuple[tuple[str, str], ...] = ()
    grid_depth: int = 2         # sampler "grid": the depth of every grid shape
    checkpoint_seconds: float = 300.0   # wall time between a trial's checkpoints (inf: none): a retry resumes there
    time_cap_seconds: float = 0.0       # a run whose training passes this many seconds stops, its trial FAILs (0: none)

    def lr_range(self, family: str, *, batch: int | None = None) -> tuple[float, float]:
        """The learning-rate range searched for `family` (its own range, else lr_min..lr_max), at `batch`
        (default `batch_size`) under the family's batch rule (`batch_scaling`)."""
        lo, hi = next(((lo, hi) for name, lo, hi in self.lr_ranges if name == family), (self.lr_min, self.lr_max))
        if self.batch_scaling(family) == "none" or batch is None:
            return lo, hi
        factor = math.sqrt(batch / self.batch_size)
        return lo * factor, hi * factor

    def batch_scaling(self, family: str) -> str:
        """How `family`'s lr range follows the batch: its own `lr_batch_scalings` entry, else `lr_batch_scaling`."""
        return next((scaling for name, scaling in self.lr_batch_scalings if name == family), self.lr_batch_scaling)

    def step_range(self, family: str) -> tuple[int, int]:
        """The step limits of `family`'s trials (its own range, else min_steps..max_steps)."""
        return next(((lo, hi) for name, lo, hi in self.step_ranges if name == family), (self.min_steps, self.max_steps))


def parse_training(raw: dict, where: str, *, derived: frozenset[str] = frozenset()) -> TrainingConfig:
    """The `[training]` table as a TrainingConfig (per-family tables parsed by name; `derived` keys refused)."""
    parsers = {"lr_ranges": partial(_family_ranges, kind=float, bounds="lr_min, lr_max"),
               "step_ranges": partial(_family_ranges, kind=int, bounds="min_steps, max_steps"),
               "budget_step_ranges": _family_budget_ranges,
               "lr_batch_scalings": _family_strings, "batch_sizes": int_list}
    return parse_table(TrainingConfig, raw, where, parsers=parsers, derived=derived)


def _family_ranges(where: str, value: Any, *, kind: type, bounds: str) -> tuple[tuple[str, Any, Any], ...]:
    """`{ gatr = [lo, hi], ... }` as ((family, lo, hi), ...), both of `kind` (`lr_ranges`, `step_ranges`)."""
    if not isinstance(value, dict):
        raise ConfigError(f"{where} must be a table of family = [{bounds}], got {value!r}")
    out = []
    for family, pair in value.items():
        if not isinstance(pair, list) or len(pair) != 2:
            raise ConfigError(f"{where}.{family} must be [{bounds}], got {pair!r}")
        out.append((family, *(typed(f"{where}.{family}", v, kind) for v in pair)))
    return tuple(out)


def _family_budget_ranges(where: str, value: Any) -> tuple[tuple[str, tuple[tuple[int, int], ...]], ...]:
    """`{ gatr = [[lo, hi], ...], ... }` (one pair per budget) as ((family, ((lo, hi), ...)), ...)."""
    if not isinstance(value, dict):
        raise ConfigError(f"{where} must be a table of family = [[min_steps, max_steps], ...] (one per budget), "
                          f"got {value!r}")
    out = []
    for family, ranges in value.items():
        if not isinstance(ranges, list) or not all(isinstance(r, list) and len(r) == 2 for r in ranges):
            raise ConfigError(f"{where}.{family} must be [[min_steps, max_steps], ...] (one per budget), got {ranges!r}")
        out.append((family, tuple(tuple(typed(f"{where}.{family}", v, int) for v in r) for r in ranges)))
    return tuple(out)


def _family_strings(where: str, value: Any) -> tuple[tuple[str, str], ...]:
    """`{ gatr = "none", ... }` as ((family, value), ...) (`lr_batch_scalings`)."""
    if not isinstance(value, dict):
        raise ConfigError(f"{where} must be a table of family = \"value\", got {value!r}")
    return tuple((family, typed(f"{where}.{family}", v, str)) for family, v in value.items())
