"""Study kind "compute" (the default): one study per (family, budget) whose space searches shapes at that budget."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from study.errors import ConfigError
from study.kinds.context import KindContext
from study.schema import COMPUTE, study_name
from study.spec import StudySpec


@dataclass(frozen=True)
class ComputeKind:
    name: str = COMPUTE
    section: str | None = None
    budgets: bool = True        # one study per budget: the study file must give budgets

    def parse(self, raw: Mapping[str, Any], where: str) -> None:
        return None

    def studies(self, context: KindContext) -> list[StudySpec]:
        """(family, budget) studies in run order: families, then budgets."""
        return [context.spec(name=study_name(family.name, budget), family=family, kind=self.name, budget=budget,
                             batch_size=context.batch_size_for(budget), space=context.spaces[family.name],
                             lr_range=context.lr_range_for(family.name, budget),
                             step_range=context.step_range_for(family.name, budget))
                for family in context.families for budget in context.budgets]

    def validate(self, context: KindContext) -> None:
        """Budgets that name distinct studies and that every family's space can meet (a grid: with its points)."""
        if not context.budgets:
            raise ConfigError("budgets must be a non-empty list")
        specs = self.studies(context)
        names = [s.name for s in specs]
        if len(set(names)) != len(names):
            raise ConfigError(f"budgets {list(context.budgets)} collide at one significant digit (study names {names})")
        for spec in specs:
            spec.space.check(spec)
            context.sampler.check(spec)   # e.g. ConfigError when the sampler's grid cannot meet the budget

    def record(self, context: KindContext) -> dict:
        return {}


kind = ComputeKind()
