"""Study kind "data": one fixed shape per family trained on nested training sets of growing size, the learning
rate searched; one study per (family, training-set size, training length) (before v2: per (family, size) at one
length), validated at log-spaced whole epochs."""

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

    Every run takes a fixed number of steps of `training.batch_size` (small sets are seen for many epochs); the
    learning rate is the searched parameter (in the family's `lr_range`). `lengths` (data study v2): the training
    lengths in steps, one study per (family, size, length), named `data/<family>/<size>/<steps>`; sizes up to
    `all_lengths_max_size` train every length, larger ones only the longest (0: every size every length).
    `steps` (before v2): one length, one study per (family, size), named `data/<family>/<size>`.
    """

    train_sizes: tuple[int, ...] = ()       # training scenes: the first n of the training split
    steps: int = 0                          # one training length (the older form; or give `lengths`)
    lengths: tuple[int, ...] = ()           # training lengths in steps, increasing
    all_lengths_max_size: int = 0           # sizes <= this train every length, larger ones the longest (0: all)
    shapes: tuple[tuple[str, tuple[tuple[str, int], ...]], ...] = ()   # (family, sorted shape items)
    sizes: tuple[tuple[str, tuple[int, ...]], ...] = ()   # (family, its own sizes) overriding train_sizes

    def shape(self, family: str) -> dict:
        """The shape kwargs of `family` (ConfigError when the study file gives none)."""
        for name, items in self.shapes:
            if name == family:
                return dict(items)
        raise ConfigError(f"data_study.shapes has no shape for family {family!r}")

    def sizes_of(self, family: str) -> tuple[int, ...]:
        """The training-set sizes `family` trains at: its own `sizes` entry, else `train_sizes`."""
        return next((own for name, own in self.sizes if name == family), self.train_sizes)

    def lengths_at(self, size: int) -> tuple[int | None, ...]:
        """The training lengths of a study at `size` (None: the older single `steps`, named without a length)."""
        if not self.lengths:
            return (None,)
        if self.all_lengths_max_size and size > self.all_lengths_max_size:
            return (self.lengths[-1],)
        return self.lengths


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


def _sizes(where: str, value: Any) -> tuple[tuple[str, tuple[int, ...]], ...]:
    """`sizes = { transformer-aug-notrans = [1024], ... }` as ((family, sizes), ...)."""
    if not isinstance(value, dict):
        raise ConfigError(f"{where} must be a table of family = [sizes], got {value!r}")
    return tuple((family, int_list(f"{where}.{family}", sizes)) for family, sizes in value.items())


@dataclass(frozen=True)
class DataKind:
    name: str = DATA
    section: str | None = "data_study"
    budgets: bool = False       # its studies are per training-set size, not per budget

    def parse(self, raw: Mapping[str, Any], where: str) -> DataStudyConfig:
        ds = parse_table(DataStudyConfig, raw, where, parsers={"train_sizes": int_list, "shapes": _shapes,
                                                                "lengths": int_list, "sizes": _sizes})
        if ds.lengths and ds.steps:
            raise ConfigError(f"{where}: give lengths (data study v2) or the older steps, not both")
        if ds.lengths and (any(n < 1 for n in ds.lengths) or list(ds.lengths) != sorted(set(ds.lengths))):
            raise ConfigError(f"{where} lengths must be increasing positive step counts without repeats, "
                              f"got {list(ds.lengths)}")
        if ds.all_lengths_max_size < 0:
            raise ConfigError(f"{where} all_lengths_max_size must be >= 0 (0: every size trains every length)")
        return ds

    def studies(self, context: KindContext) -> list[StudySpec]:
        ds, batch = context.section or DataStudyConfig(), context.training.batch_size
        specs = []
        for family in context.families:
            shape = ds.shape(family.name)
            step = batch * sample_flops(family, context.sample, shape)[1]
            for n in ds.sizes_of(family.name):
                for length in ds.lengths_at(n):
                    steps = ds.steps if length is None else length
                    specs.append(context.spec(
                        name=data_study_name(family.name, n, length), family=family, kind=self.name,
                        budget=float(steps * step), batch_size=batch, space=fixed_space,
                        lr_range=context.training.lr_range(family.name), train_size=n, shape=shape, steps=steps,
                        eval_at=epoch_eval_steps(steps, batch_size=batch, train_size=n,
                                                 evals=context.training.evals)))
        return specs

    def validate(self, context: KindContext) -> None:
        """Sizes that fit the training split, a fixed valid shape per family, runs of >= 1 epoch."""
        ds, t = context.section or DataStudyConfig(), context.training
        if context.budgets:
            raise ConfigError("a data study (kind \"data\") has no budgets: its studies are data_study.train_sizes")
        if not ds.train_sizes:
            raise ConfigError("a data study needs [data_study] train_sizes (training scenes per study)")
        available = context.task.train_scenes(context.task_settings)
        for where, sizes in (("train_sizes", ds.train_sizes), *((f"sizes.{f}", own) for f, own in ds.sizes)):
            if len(set(sizes)) != len(sizes) or not sizes:
                raise ConfigError(f"duplicate size in data_study.{where} {list(sizes)}" if sizes else
                                  f"data_study.{where} is empty")
            for n in sizes:
                if not 0 < n <= available:
                    raise ConfigError(f"data_study.{where} entry {n} must be in 1..{available} (the training split "
                                      f"of the task's data): raise data.scenes")
        if not ds.lengths and ds.steps < 1:
            raise ConfigError(f"a data study needs [data_study] lengths (training lengths in steps) or steps >= 1, "
                              f"got steps = {ds.steps}")
        for family in context.families:
            for n in ds.sizes_of(family.name):
                shortest = min(length or ds.steps for length in ds.lengths_at(n))
                if shortest * t.batch_size < n:
                    raise ConfigError(f"data_study: {shortest} steps x training.batch_size = {shortest * t.batch_size}"
                                      f" samples is less than one epoch of a training set of {n} scenes")
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
        for table, names in (("shapes", [f for f, _ in ds.shapes]), ("sizes", [f for f, _ in ds.sizes])):
            for name in names:
                if name not in context.known:  # a misspelt family is an error; one left out of this run is ignored
                    raise ConfigError(f"data_study.{table}: unknown model family {name!r}")
        for family in context.families:
            validate_shape(family, **ds.shape(family.name))  # ConfigError: no shape, or one the family rejects

    def record(self, context: KindContext) -> dict:
        """What every trial of a study shares (its length is in its name and budget, so that lengths and sizes
        may be added to a study file later and the studies it already holds resume)."""
        ds = context.section or DataStudyConfig()
        return {"kind": DATA, **({} if ds.lengths else {"steps": ds.steps}),
                "shapes": {f: dict(items) for f, items in ds.shapes}}


kind = DataKind()
