"""Study kind "data": one fixed shape per family trained on nested training sets of growing size, the learning
rate searched; one study per (family, training-set size), validated at log-spaced whole epochs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from search_spaces.fixed import space as fixed_space
from study.errors import ConfigError
from study.flops import sample_flops
from study.kinds.context import KindContext
from study.models import validate_shape
from study.plugins.tables import int_list, parse_table, typed
from study.schema import DATA, data_study_name
from study.spec import StudySpec
from study.training import epoch_eval_steps


@dataclass(frozen=True)
class DataStudyConfig:
    """The study file's `[data_study]` table.

    Every run takes `steps` steps of `training.batch_size` (small sets are seen for many epochs); the
    learning rate is the searched parameter (`trials` per size, in the family's `lr_range`).
    """

    train_sizes: tuple[int, ...] = ()       # training scenes: the first n of the training split
    steps: int = 0
    shapes: tuple[tuple[str, tuple[tuple[str, int], ...]], ...] = ()   # (family, sorted shape items)

    def shape(self, family: str) -> dict:
        """The shape kwargs of `family` (ConfigError when the study file gives none)."""
        for name, items in self.shapes:
            if name == family:
                return dict(items)
        raise ConfigError(f"data_study.shapes has no shape for family {family!r}")


def _shapes(where: str, value: Any) -> tuple[tuple[str, tuple[tuple[str, int], ...]], ...]:
    """`shapes = { gatr = { mv_channels = 4, s_channels = 8, depth = 2 }, ... }` as ((family, items), ...)."""
    if not isinstance(value, dict):
        raise ConfigError(f"{where} must be a table of family = {{ shape }}, got {value!r}")
    out = []
    for family, shape in value.items():
        if not isinstance(shape, dict) or not shape:
            raise ConfigError(f"{where}.{family} must be a table of shape settings, got {shape!r}")
        out.append((family, tuple(sorted((k, typed(f"{where}.{family}.{k}", v, int)) for k, v in shape.items()))))
    return tuple(out)


@dataclass(frozen=True)
class DataKind:
    name: str = DATA
    section: str | None = "data_study"
    budgets: bool = False       # its studies are per training-set size, not per budget

    def parse(self, raw: Mapping[str, Any], where: str) -> DataStudyConfig:
        return parse_table(DataStudyConfig, raw, where, parsers={"train_sizes": int_list, "shapes": _shapes})

    def studies(self, context: KindContext) -> list[StudySpec]:
        ds, batch = context.section or DataStudyConfig(), context.training.batch_size
        specs = []
        for family in context.families:
            shape = ds.shape(family.name)
            step = batch * sample_flops(family, context.sample, shape)[1]
            for n in ds.train_sizes:
                specs.append(context.spec(
                    name=data_study_name(family.name, n), family=family, kind=self.name, budget=float(ds.steps * step),
                    batch_size=batch, space=fixed_space, lr_range=context.training.lr_range(family.name),
                    train_size=n, shape=shape, steps=ds.steps,
                    eval_at=epoch_eval_steps(ds.steps, batch_size=batch, train_size=n, evals=context.training.evals)))
        return specs

    def validate(self, context: KindContext) -> None:
        """Sizes that fit the training split, a fixed valid shape per family, runs of >= 1 epoch."""
        ds, t = context.section or DataStudyConfig(), context.training
        if context.budgets:
            raise ConfigError("a data study (kind \"data\") has no budgets: its studies are data_study.train_sizes")
        if not ds.train_sizes:
            raise ConfigError("a data study needs [data_study] train_sizes (training scenes per study)")
        if len(set(ds.train_sizes)) != len(ds.train_sizes):
            raise ConfigError(f"duplicate size in data_study.train_sizes {list(ds.train_sizes)}")
        available = context.task.train_scenes(context.task_settings)
        for n in ds.train_sizes:
            if not 0 < n <= available:
                raise ConfigError(f"data_study.train_sizes entry {n} must be in 1..{available} (the training split "
                                  f"of the task's data): raise data.scenes")
        if ds.steps < 1:
            raise ConfigError(f"data_study.steps must be >= 1, got {ds.steps}")
        if ds.steps * t.batch_size < max(ds.train_sizes):
            raise ConfigError(f"data_study.steps x training.batch_size = {ds.steps * t.batch_size} samples is less "
                              f"than one epoch of the largest training set ({max(ds.train_sizes)} scenes)")
        if t.batch_sizes:
            raise ConfigError("training.batch_sizes is per budget: a data study uses training.batch_size")
        if t.budget_step_ranges:
            raise ConfigError("training.budget_step_ranges is per budget: a data study has no budgets")
        if (context.sampler.counts_points and context.trials > 1
                and any(lo == hi for lo, hi in (t.lr_range(f.name) for f in context.families))):
            raise ConfigError(f"sampler {context.sampler.name!r}: a family's learning-rate range is one value, too "
                              f"few for {context.trials} trials per size")
        for spec in self.studies(context):
            context.sampler.check(spec)
        for name, _ in ds.shapes:
            if name not in context.known:  # a misspelt family is an error; one left out of this run is ignored
                raise ConfigError(f"data_study.shapes: unknown model family {name!r}")
        for family in context.families:
            validate_shape(family, **ds.shape(family.name))  # ConfigError: no shape, or one the family rejects

    def record(self, context: KindContext) -> dict:
        ds = context.section or DataStudyConfig()
        return {"kind": DATA, "steps": ds.steps, "shapes": {f: dict(items) for f, items in ds.shapes}}


kind = DataKind()
