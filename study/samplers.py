"""The built-in samplers (`study.plugins.Sampler`, entry points `equiscale.samplers`): TPE, the IsoFLOP grid, the
adaptive IsoFLOP refinement and the data study's learning-rate grid with edge extension ("lrgrid").

A sampler plugin makes the Optuna sampler of one study from its `StudySpec` and a seed (fixed by the study,
how many trials it already has and the run's seed, so a resumed study gets a fresh but reproducible one), and
says how many trials a study still needs from what it holds (`remaining`). An adaptive sampler (`adaptive`)
also decides each next point itself from the stored trials (`next_params`), so that it resumes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Mapping

import optuna
from optuna.trial import TrialState

from search_spaces import lrgrid
from search_spaces.refine import Decision, Ladder, Observation, RefineSettings, decide
from study.errors import ConfigError
from study.plugins.tables import parse_table
from study.schema import FAIL_REASON


def count_complete(trials, *, distinct: bool) -> int:
    """COMPLETE trials; `distinct`: the distinct points (parameters) they trained (a point trained twice, e.g. by a
    resumed run before the grid sampler found points by their parameters, counts once: the missing point is due)."""
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    return len({tuple(sorted(t.params.items())) for t in complete}) if distinct else len(complete)


@dataclass(frozen=True)
class _Counted:
    """A sampler whose study is done at `trials` COMPLETE trials (distinct points when `counts_points`), with no
    table of its own."""

    name: str
    counts_points: bool
    section: str | None = None
    adaptive: bool = False

    def parse(self, raw: Mapping[str, Any], where: str) -> None:
        return None

    def target(self, settings, trials: int) -> int:
        """A study's target: the study file's `trials`."""
        return trials

    def remaining(self, spec, trials) -> int:
        return max(0, spec.trials - count_complete(trials, distinct=self.counts_points))


@dataclass(frozen=True)
class TPE(_Counted):
    """Optuna's TPE with the constant liar, so that parallel trials spread out."""

    name: str = "tpe"
    counts_points: bool = False

    def make(self, spec, *, seed: int) -> optuna.samplers.BaseSampler:
        return optuna.samplers.TPESampler(seed=seed, constant_liar=True)

    def check(self, spec) -> None:
        """Any study works with TPE."""


@dataclass(frozen=True)
class Grid(_Counted):
    """The study space's grid of `spec.trials` points (an IsoFLOP profile; a data study: learning rates). The
    target counts distinct points, and a point whose trial failed is handed out again."""

    name: str = "grid"
    counts_points: bool = True

    def make(self, spec, *, seed: int) -> optuna.samplers.BaseSampler:
        from study.adapter import GridSampler

        return GridSampler(spec.space.grid(spec, spec.trials), seed=seed)

    def check(self, spec) -> None:
        """ConfigError when the space's grid cannot meet the study (too few sizes, no shape at the grid depth)."""
        spec.space.grid(spec, spec.trials)


@dataclass(frozen=True)
class IsoFLOPRefinement:
    """Adaptive IsoFLOP refinement (`search_spaces.refine`): coarse grid, extension past an edge minimum,
    refinement around the best point, an lr sweep at it, replicates; settings in the study file's `[isoflop]`
    table; `trials` is unused (the `cap` bounds a study). Every decision is made from the stored trials."""

    name: str = "isoflop"
    counts_points: bool = False
    section: str | None = "isoflop"
    adaptive: bool = True
    raisable: tuple[str, ...] = ("max_points", "lr_extend", "seeds", "cap", "replicate_best")   # more trials only

    def parse(self, raw: Mapping[str, Any], where: str) -> RefineSettings:
        settings = parse_table(RefineSettings, raw, where)
        if settings.start < 3 or settings.max_points < settings.start or settings.seeds < 1 or settings.cap < 1:
            raise ConfigError(f"{where}: needs start >= 3, max_points >= start, seeds >= 1 and cap >= 1")
        if not (0 < settings.coarse_fraction <= 1 and settings.refine_decades > 0 and settings.lr_factor > 1
                and settings.lr_extend >= 0):
            raise ConfigError(f"{where}: needs 0 < coarse_fraction <= 1, refine_decades > 0, lr_factor > 1 and "
                              f"lr_extend >= 0")
        if settings.flank < 0 or not settings.flank_decades > 0 or settings.replicate not in (1, 3):
            raise ConfigError(f"{where}: needs flank >= 0, flank_decades > 0 and replicate 1 (the best point) or 3 "
                              f"(it and its neighbours)")
        return settings

    def make(self, spec, *, seed: int) -> optuna.samplers.BaseSampler:
        return optuna.samplers.RandomSampler(seed=seed)   # unused: every trial's parameters are fixed by `decide`

    def check(self, spec) -> None:
        """ConfigError when fewer than 3 sizes of the grid depth fit the study (a minimum needs a size on each side).
        A ladder of fewer than `start` sizes is accepted: its coarse grid rounds to fewer sizes, as a sparse
        ladder's always did, and extension and flanks reach the rest."""
        if not hasattr(spec.space, "feasible"):
            raise ConfigError(f"sampler 'isoflop' refines a budget's model size: study {spec.name!r} has no "
                              f"budget-constrained space (use it with kind = \"compute\")")
        ladder = self.ladder(spec)
        if len(ladder.sizes) < 3:
            raise ConfigError(f"sampler 'isoflop': only {len(ladder.sizes)} {spec.family_name} sizes of depth "
                              f"{spec.grid_depth} fit budget {spec.budget:.3g}, fewer than the 3 a bracketed "
                              f"minimum needs")

    def settings(self, spec) -> RefineSettings:
        return spec.sampler_settings if spec.sampler_settings is not None else RefineSettings()

    def ladder(self, spec) -> Ladder:
        """The sizes of the study space's grid at `spec.grid_depth` within the step limits (once per study: every
        decision of the searcher, which Tune asks often while it waits, reads it)."""
        return _ladder(spec)

    def lr_rule(self, spec) -> float:
        """The family's rule learning rate at this budget: the geometric mean of the study's lr range."""
        lo, hi = spec.lr_range
        return math.sqrt(lo * hi)

    def observations(self, spec, trials) -> list[Observation]:
        """The study's trials as the decision reads them: finished ones with their loss, running ones without."""
        ladder, unit, out = self.ladder(spec), 3 * spec.batch_size, []
        for t in trials:
            if t.state not in (TrialState.COMPLETE, TrialState.RUNNING, TrialState.WAITING):
                continue
            params = t.params or t.system_attrs.get("fixed_params", {})
            if "fwd_flops" not in params or "lr" not in params:
                continue
            size = ladder.nearest(math.log(params["fwd_flops"] * unit))
            out.append(Observation(size, float(params["lr"]), t.value if t.state == TrialState.COMPLETE else None))
        return out

    def decide(self, spec, trials) -> Decision:
        return decide(self.ladder(spec), self.settings(spec), self.observations(spec, trials),
                      lr_rule=self.lr_rule(spec), lr_range=tuple(spec.lr_range))

    def params(self, spec, size: int, lr: float) -> dict:
        """The space's parameters that train `size` at `lr` (the space maps them back to exactly this size)."""
        ladder = self.ladder(spec)
        return {"depth": spec.grid_depth, "fwd_flops": ladder.flops[ladder.index(size)] / (3 * spec.batch_size),
                "lr": lr}

    def target(self, settings, trials: int) -> int:
        """A study's target: at most `cap` trials (the refinement may end sooner)."""
        return (settings or RefineSettings()).cap

    def remaining(self, spec, trials) -> int:
        decision = self.decide(spec, trials)
        if decision.done:
            return 0
        return max(1, self.settings(spec).cap - len(self.observations(spec, trials)))


# How the fail reasons of runs a retry would end the same way begin (study.training.DivergenceError and
# TimeCapError messages; tests/test_lrgrid.py checks them): the lr grid counts such a trial as an infinite loss.
SETTLED_FAILURES = ("diverged", "time cap")


@dataclass(frozen=True)
class LrGrid:
    """A data study's learning rate (`search_spaces.lrgrid`): a log grid of `points` over the family's lr range,
    extended past an edge best (at most `extend` times), the best trained with `seeds` seeds; settings in the
    study file's `[lrgrid]` table, `trials` unused. Every decision is made from the stored trials."""

    name: str = "lrgrid"
    counts_points: bool = False
    section: str | None = "lrgrid"
    adaptive: bool = True
    raisable: tuple[str, ...] = ("extend", "seeds")   # a resumed study may extend further or replicate more

    def parse(self, raw: Mapping[str, Any], where: str) -> lrgrid.LrGridSettings:
        settings = parse_table(lrgrid.LrGridSettings, raw, where)
        if settings.points < 5 or settings.extend < 0 or settings.seeds < 1:
            raise ConfigError(f"{where}: needs points >= 5 (a best strictly inside the grid), extend >= 0 and "
                              f"seeds >= 1")
        return settings

    def make(self, spec, *, seed: int) -> optuna.samplers.BaseSampler:
        return optuna.samplers.RandomSampler(seed=seed)   # unused: every trial's lr is fixed by `decide`

    def check(self, spec) -> None:
        """ConfigError unless the study trains one fixed shape (a data study) over a range of learning rates."""
        if not spec.shape:
            raise ConfigError(f"sampler 'lrgrid' tunes the learning rate of one fixed shape: study {spec.name!r} "
                              f"has none (use it with kind = \"data\")")
        lo, hi = spec.lr_range
        if not 0 < lo < hi:
            raise ConfigError(f"sampler 'lrgrid': study {spec.name!r} needs an lr range lo < hi, got [{lo:g}, {hi:g}]")

    def settings(self, spec) -> lrgrid.LrGridSettings:
        return spec.sampler_settings if spec.sampler_settings is not None else lrgrid.LrGridSettings()

    def lr_bounds(self, spec) -> tuple[float, float]:
        """The lrs a study may train: its range widened by `extend` grid steps each way (the space's distribution)."""
        settings = self.settings(spec)
        lo, hi = (lrgrid.grid_lr(tuple(spec.lr_range), settings.points, k)
                  for k in (-settings.extend, settings.points - 1 + settings.extend))
        return lo * (1 - 1e-9), hi * (1 + 1e-9)

    def lr_rule(self, spec) -> float:
        """The middle of the family's lr range (geometric mean), stored as each trial's rule lr."""
        lo, hi = spec.lr_range
        return math.sqrt(lo * hi)

    def observations(self, spec, trials) -> list[Observation]:
        """The study's trials as the decision reads them: finished with their loss, running without, and failed for
        a reason a retry would repeat (diverged, time cap) as an infinite loss; other failures not at all."""
        out = []
        for t in trials:
            params = t.params or t.system_attrs.get("fixed_params", {})
            if "lr" not in params:
                continue
            if t.state == TrialState.COMPLETE:
                value = t.value
            elif t.state in (TrialState.RUNNING, TrialState.WAITING):
                value = None
            elif t.state == TrialState.FAIL and str(t.user_attrs.get(FAIL_REASON, "")).startswith(SETTLED_FAILURES):
                value = math.inf
            else:
                continue
            out.append(Observation(lrgrid.SIZE, float(params["lr"]), value))
        return out

    def decide(self, spec, trials) -> Decision:
        return lrgrid.decide(self.settings(spec), self.observations(spec, trials), lr_range=tuple(spec.lr_range))

    def params(self, spec, size: int, lr: float) -> dict:
        """The space's parameters that train the study's shape at `lr`."""
        return {"lr": lr}

    def target(self, settings, trials: int) -> int:
        """A study's target: the grid, every extension and the best's further seeds."""
        return (settings or lrgrid.LrGridSettings()).most_trials()

    def remaining(self, spec, trials) -> int:
        return lrgrid.still_wanted(self.settings(spec), self.observations(spec, trials), lr_range=tuple(spec.lr_range))


@lru_cache(maxsize=256)
def _ladder(spec) -> Ladder:
    """The ladder of one study (a StudySpec hashes by identity)."""
    table = spec.space.feasible(spec).get(spec.grid_depth)
    if not table:
        raise ConfigError(f"sampler 'isoflop': no {spec.family_name} shape of depth {spec.grid_depth} fits "
                          f"budget {spec.budget:.3g} within {spec.step_range[0]}..{spec.step_range[1]} steps")
    params = [spec.space.params(size, spec.grid_depth, spec) for _, size in table]
    return Ladder(sizes=tuple(size for _, size in table), flops=tuple(f for f, _ in table), params=tuple(params))


tpe = TPE()
grid = Grid()
isoflop = IsoFLOPRefinement()
lr_grid = LrGrid()
