"""Study configuration: a typed, frozen view of the TOML file (or the embedded default), validated in one place."""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass, fields, replace
from functools import partial
from pathlib import Path
from typing import Any

from search_spaces import space_for
from study.benchmark import BenchmarkConfig, check_fits_memory
from study.errors import ConfigError
from study.flops import step_flops
from study.models import get_family, validate_shape
from study.schema import COMPUTE, DATA, data_study_name, study_name
from study.storage import DEFAULT_STORAGE

SAMPLERS = ("tpe", "grid")
LR_BATCH_SCALINGS = ("none", "sqrt")   # training.lr_batch_scaling: how the lr ranges follow the batch size
KINDS = (COMPUTE, DATA)
RAY_GRANULARITY = 1e-4  # Ray rounds resource amounts to this unit (ray_constants.MIN_RESOURCE_GRANULARITY)

# The embedded default study: 3 families x 3 budgets (2e11-2e12) x 3 IsoFLOP grid points, sized for under 10
# minutes on a 2-core CPU (a cold dataset cache included) and for the matmul peak: small shapes run at a few %
# of it, so every grid point is a shape of width >= 47 (GATr: >= 5 multivector channels) at a batch that
# grows with the budget (64, 128, 256), and the learning rates, measured at batch 256, follow the batch by the
# square-root rule. Each family's step range keeps its runs off the no-collision plateau (val ~0.08): the
# transformer needs >= 1,200 steps, transformer-aug >= 1,800, GATr >= 400. The [training] keys below are the
# only ones that differ from the dataclass defaults: a study file that omits a section gets those defaults.
DEFAULT_TOML = """
families = ["transformer", "transformer-aug", "gatr"]
budgets = [2e11, 7e11, 2e12]
trials = 3
seed = 0
sampler = "grid"

[training]
batch_size = 256
batch_sizes = [64, 128, 256]
lr_batch_scaling = "sqrt"
lr_ranges = { transformer = [8e-3, 3e-2], transformer-aug = [1.6e-2, 6e-2], gatr = [1.2e-2, 4.8e-2] }
step_ranges = { transformer = [1200, 2400], transformer-aug = [1800, 3000], gatr = [400, 1000] }
"""


@dataclass(frozen=True)
class DataConfig:
    """Which rigid-body dataset every trial trains on (see `study.benchmark.load_dataset`)."""

    scenes: int = 65536
    bodies: int = 4
    seed: int = 0
    val_fraction: float = 0.05  # large datasets want small fractions: final losses run over the whole splits
    test_fraction: float = 0.05

    def benchmark(self) -> BenchmarkConfig:
        """The benchmark settings of this dataset (ConfigError naming a bad one)."""
        return BenchmarkConfig(scenes=self.scenes, bodies=self.bodies, seed=self.seed,
                               val_fraction=self.val_fraction, test_fraction=self.test_fraction)


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
    lr_ranges: tuple[tuple[str, float, float], ...] = (("transformer", 1e-3, 4e-3), ("transformer-aug", 1e-3, 4e-3),
                                                       ("gatr", 2e-3, 8e-3))
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


@dataclass(frozen=True)
class DataStudyConfig:
    """Study kind "data": one fixed shape per family trained on nested training sets of growing size.

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


@dataclass(frozen=True)
class StudySpec:
    """One Optuna study of a run: its name and family, the FLOPs each trial uses, the batch size, and for a
    data study the training-set size (0: a compute study on the whole training split)."""

    name: str
    family: str
    budget: float
    batch_size: int
    train_size: int = 0

    @property
    def kind(self) -> str:
        return DATA if self.train_size else COMPUTE


@dataclass(frozen=True)
class ResourceConfig:
    """Where and how trials run: per-trial allotment, concurrency, retries, Ray address."""

    cpus_per_trial: float = 1.0
    gpus_per_trial: float = 0.0
    max_concurrent: int = 0     # 0 = as many as the cluster's CPUs (and GPUs) allow
    max_failures: int = 2       # retries of a trial whose worker failed (not of a diverged run)
    address: str | None = None  # existing Ray cluster; None = start a local one


@dataclass(frozen=True)
class StudyConfig:
    """One `equiscale run`: a study per (family, budget) (kind "data": per (family, training-set size)),
    each with `trials` COMPLETE trials."""

    families: tuple[str, ...]
    budgets: tuple[float, ...] = ()
    trials: int = 6
    storage: str = DEFAULT_STORAGE
    seed: int = 0
    sampler: str = "tpe"        # "tpe" (Optuna's TPE) or "grid" (an IsoFLOP grid of `trials` sizes, log-spaced)
    data: DataConfig = DataConfig()
    training: TrainingConfig = TrainingConfig()
    resources: ResourceConfig = ResourceConfig()
    kind: str = COMPUTE
    data_study: DataStudyConfig = DataStudyConfig()

    @property
    def counts_points(self) -> bool:
        """A grid study's target is its distinct points: a point trained twice counts once."""
        return self.sampler == "grid"

    def _aligned(self, budget: float) -> int | None:
        """The index into the per-budget lists for one of the study's budgets: that of the nearest aligned
        budget (log scale); None for a budget outside the study (it takes the study-wide settings)."""
        return _nearest(self.training.aligned_budgets or self.budgets, budget) if budget in self.budgets else None

    def batch_size_for(self, budget: float) -> int:
        """The batch size at `budget`: its `training.batch_sizes` entry, else batch_size."""
        t, i = self.training, self._aligned(budget)
        return t.batch_sizes[i] if t.batch_sizes and i is not None else t.batch_size

    def step_range_for(self, family: str, budget: float) -> tuple[int, int]:
        """The step limits of `family`'s trials at `budget`: its `budget_step_ranges` entry for that budget,
        else its `step_range`."""
        per_budget, i = dict(self.training.budget_step_ranges).get(family), self._aligned(budget)
        return per_budget[i] if per_budget and i is not None else self.training.step_range(family)

    def lr_range_for(self, family: str, budget: float) -> tuple[float, float]:
        """The learning-rate range `family` searches at `budget` (its range at that budget's batch size)."""
        return self.training.lr_range(family, batch=self.batch_size_for(budget))

    def studies(self) -> list[tuple[str, float]]:
        """(family, budget) pairs of a compute study in run order."""
        return [(family, budget) for family in self.families for budget in self.budgets]

    def specs(self) -> list[StudySpec]:
        """Every study of this run, in run order (either kind)."""
        if self.kind == COMPUTE:
            return [StudySpec(study_name(f, b), f, float(b), self.batch_size_for(b)) for f, b in self.studies()]
        ds, batch = self.data_study, self.training.batch_size
        return [StudySpec(data_study_name(f, n), f, float(ds.steps * _data_step_flops(self, f)), batch, n)
                for f in self.families for n in ds.train_sizes]


def _data_step_flops(config: StudyConfig, family: str) -> int:
    """Training FLOPs of one step of a data study's fixed shape for `family`."""
    return step_flops(family, batch_size=config.training.batch_size, bodies=config.data.bodies,
                      **config.data_study.shape(family))


def settings(config: StudyConfig) -> dict:
    """The settings that shape every trial of a study; a resumed study must have been run with the same."""
    t, d = config.training, config.data
    return {"seed": config.seed, "bodies": d.bodies, "min_steps": t.min_steps,
            "max_steps": t.max_steps, "lr_min": t.lr_min, "lr_max": t.lr_max,
            "warmup_fraction": t.warmup_fraction, "weight_decay": t.weight_decay, "grad_clip": t.grad_clip,
            "evals": t.evals, "val_samples": t.val_samples,
            "lr_ranges": [list(r) for r in t.lr_ranges], "grid_depth": t.grid_depth, "sampler": config.sampler,
            **({"step_ranges": [list(r) for r in t.step_ranges]} if t.step_ranges else {}),  # absent: as before
            **({"budget_step_ranges": [[f, [list(r) for r in ranges]] for f, ranges in t.budget_step_ranges]}
               if t.budget_step_ranges else {}),
            **({"lr_batch_scaling": t.lr_batch_scaling} if t.lr_batch_scaling != "none" else {}),
            **({"lr_batch_scalings": [list(r) for r in t.lr_batch_scalings]} if t.lr_batch_scalings else {}),
            **({"kind": DATA, "steps": config.data_study.steps,
                "shapes": {f: dict(items) for f, items in config.data_study.shapes}} if config.kind == DATA else {})}
    # checkpoint_seconds is left out: when a trial saves its state does not change what it computes


def load_config(path: str | Path | None = None) -> StudyConfig:
    """Parse a TOML file (or the embedded default when `path` is None) into a validated StudyConfig."""
    if path is None:
        raw, where = tomllib.loads(DEFAULT_TOML), "embedded default"
    else:
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"cannot read config {str(path)!r}: {exc.strerror or exc}") from None
        except UnicodeDecodeError as exc:
            raise ConfigError(f"config {str(path)!r} is not UTF-8 text (byte {exc.start}): TOML files are UTF-8") from None
        except ValueError as exc:  # a path with a NUL byte (possible from Python, not from a shell)
            raise ConfigError(f"cannot read config {str(path)!r}: {exc}") from None
        try:
            raw, where = tomllib.loads(text), str(path)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"malformed TOML in {str(path)!r}: {exc}") from None
    config = _from_dict(raw, where)
    validate(config)
    return config


def with_overrides(config: StudyConfig, **overrides: Any) -> StudyConfig:
    """Apply command-line overrides (None = keep) and validate the result.

    Keys: families, budgets, trials, storage, address, cpus_per_trial, gpus_per_trial. With per-budget
    `training.batch_sizes` or `budget_step_ranges`, each overriding budget takes the batch size and step range
    of the config's nearest budget (log scale).
    """
    top = {k: v for k, v in overrides.items() if v is not None and k in ("families", "budgets", "trials", "storage")}
    if "families" in top:
        top["families"] = tuple(top["families"])
    if "budgets" in top:
        top["budgets"] = tuple(float(b) for b in top["budgets"])
    res = {k: v for k, v in overrides.items() if v is not None and k in ("address", "cpus_per_trial", "gpus_per_trial")}
    unknown = set(overrides) - {"families", "budgets", "trials", "storage", "address", "cpus_per_trial", "gpus_per_trial"}
    if unknown:
        raise ConfigError(f"unknown override(s): {', '.join(sorted(unknown))}")
    training = config.training
    if "budgets" in top and not training.aligned_budgets:
        training = replace(training, aligned_budgets=config.budgets)   # the per-budget lists stay the file's
    config = replace(config, **top, training=training, resources=replace(config.resources, **res))
    validate(config)
    return config


def _nearest(budgets: tuple[float, ...], budget: float) -> int:
    """The index of the budget nearest to `budget` in log scale (any one for a budget <= 0 or NaN, which
    validation then rejects by name): a command-line budget takes the per-budget settings of the nearest."""
    def distance(i: int) -> float:
        return abs(math.log(budgets[i] / budget)) if budget > 0 and math.isfinite(budget) else 0.0
    return min(range(len(budgets)), key=distance)


DERIVED = {"aligned_budgets"}   # set by with_overrides (the file's budgets), never by a study file


def _from_dict(raw: dict, where: str) -> StudyConfig:
    """Build the dataclasses from parsed TOML, rejecting unknown keys and wrong types by name."""
    sections = {"data": DataConfig, "training": TrainingConfig, "resources": ResourceConfig,
                "data_study": DataStudyConfig}
    top_fields = {f.name: f for f in fields(StudyConfig)}
    unknown = set(raw) - set(top_fields)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}")
    kwargs: dict[str, Any] = {}
    for name, value in raw.items():
        if name in sections:
            if not isinstance(value, dict):
                raise ConfigError(f"{where}: [{name}] must be a table")
            kwargs[name] = _section(sections[name], value, f"{where}: [{name}]")
        elif name in ("families", "budgets"):
            if not isinstance(value, list) or not value:
                raise ConfigError(f"{where}: {name} must be a non-empty list")
            kwargs[name] = tuple(_typed(f"{where}: {name}", v, str if name == "families" else float) for v in value)
        else:
            kwargs[name] = _typed(f"{where}: {name}", value,
                                  {"trials": int, "storage": str, "seed": int, "sampler": str, "kind": str}[name])
    kind = kwargs.get("kind", COMPUTE)
    for required in ("families", "budgets") if kind == COMPUTE else ("families",):
        if required not in kwargs:
            raise ConfigError(f"{where}: missing key {required!r}")
    if kind == DATA and "budgets" in kwargs:
        raise ConfigError(f"{where}: a data study (kind = \"data\") has no budgets: give [data_study] train_sizes")
    if kind == COMPUTE and "data_study" in kwargs:
        raise ConfigError(f"{where}: [data_study] needs kind = \"data\"")
    return StudyConfig(**kwargs)


def _section(cls, raw: dict, where: str):
    known = {f.name: f for f in fields(cls) if f.name not in DERIVED}
    unknown = set(raw) - set(known)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}")
    types = {"int": int, "float": float, "str": str, "str | None": str}
    parsers = {"lr_ranges": partial(_family_ranges, kind=float, bounds="lr_min, lr_max"),
               "step_ranges": partial(_family_ranges, kind=int, bounds="min_steps, max_steps"),
               "budget_step_ranges": _family_budget_ranges,
               "lr_batch_scalings": _family_strings, "batch_sizes": _int_list, "train_sizes": _int_list, "shapes": _shapes}
    return cls(**{k: parsers[k](f"{where} {k}", v) if k in parsers else _typed(f"{where} {k}", v, types[known[k].type])
                  for k, v in raw.items()})


def _int_list(where: str, value: Any) -> tuple[int, ...]:
    if not isinstance(value, list):
        raise ConfigError(f"{where} must be a list of integers, got {value!r}")
    return tuple(_typed(where, v, int) for v in value)


def _shapes(where: str, value: Any) -> tuple[tuple[str, tuple[tuple[str, int], ...]], ...]:
    """`shapes = { gatr = { mv_channels = 4, s_channels = 8, depth = 2 }, ... }` as ((family, items), ...)."""
    if not isinstance(value, dict):
        raise ConfigError(f"{where} must be a table of family = {{ shape }}, got {value!r}")
    out = []
    for family, shape in value.items():
        if not isinstance(shape, dict) or not shape:
            raise ConfigError(f"{where}.{family} must be a table of shape settings, got {shape!r}")
        out.append((family, tuple(sorted((k, _typed(f"{where}.{family}.{k}", v, int)) for k, v in shape.items()))))
    return tuple(out)


def _family_ranges(where: str, value: Any, *, kind: type, bounds: str) -> tuple[tuple[str, Any, Any], ...]:
    """`{ gatr = [lo, hi], ... }` as ((family, lo, hi), ...), both of `kind` (`lr_ranges`, `step_ranges`)."""
    if not isinstance(value, dict):
        raise ConfigError(f"{where} must be a table of family = [{bounds}], got {value!r}")
    out = []
    for family, pair in value.items():
        if not isinstance(pair, list) or len(pair) != 2:
            raise ConfigError(f"{where}.{family} must be [{bounds}], got {pair!r}")
        out.append((family, *(_typed(f"{where}.{family}", v, kind) for v in pair)))
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
        out.append((family, tuple(tuple(_typed(f"{where}.{family}", v, int) for v in r) for r in ranges)))
    return tuple(out)


def _family_strings(where: str, value: Any) -> tuple[tuple[str, str], ...]:
    """`{ gatr = "none", ... }` as ((family, value), ...) (`lr_batch_scalings`)."""
    if not isinstance(value, dict):
        raise ConfigError(f"{where} must be a table of family = \"value\", got {value!r}")
    return tuple((family, _typed(f"{where}.{family}", v, str)) for family, v in value.items())


def _typed(where: str, value: Any, kind: type) -> Any:
    """Check a TOML value's type (ints are accepted as floats, not vice versa; no bools as numbers)."""
    if isinstance(value, bool) or not (isinstance(value, kind) or (kind is float and isinstance(value, int))):
        raise ConfigError(f"{where} must be {kind.__name__}, got {value!r}")
    try:
        return kind(value)
    except OverflowError:  # an integer beyond float's range (tomllib reads integers of any size)
        raise ConfigError(f"{where} must be a finite number, got an integer of {len(str(abs(value)))} digits") from None


def validate(config: StudyConfig) -> None:
    """Every check that needs no Ray and no storage: ranges, families, budgets vs the smallest shapes."""
    t, r, d = config.training, config.resources, config.data
    _positive("trials", config.trials)
    check_fits_memory(d.benchmark())  # ConfigError naming a bad data setting, or data too big for memory
    _positive("training.batch_size", t.batch_size)
    aligned = t.aligned_budgets or config.budgets
    if t.batch_sizes and len(t.batch_sizes) != len(aligned):
        raise ConfigError(f"training.batch_sizes has {len(t.batch_sizes)} entries but there are "
                          f"{len(aligned)} budgets (one batch size per budget)")
    for b in t.batch_sizes:
        _positive("training.batch_sizes entry", b)
    _positive("training.evals", t.evals)
    if t.min_steps < 100:
        raise ConfigError(f"training.min_steps must be >= 100 (flooring steps must lose < 1% of the budget), got {t.min_steps}")
    if t.max_steps < t.min_steps:
        raise ConfigError(f"training.max_steps ({t.max_steps}) must be >= training.min_steps ({t.min_steps})")
    step_limits = [(f"step_ranges.{family}", family, lo, hi) for family, lo, hi in t.step_ranges]
    step_limits += [(f"budget_step_ranges.{family}", family, lo, hi)
                    for family, ranges in t.budget_step_ranges for lo, hi in ranges]
    for where, family, lo, hi in step_limits:
        get_family(family)  # ConfigError naming an unknown family
        if not 100 <= lo <= hi:
            raise ConfigError(f"training.{where} must satisfy 100 <= min_steps <= max_steps, got {lo}, {hi}")
    for family, ranges in t.budget_step_ranges if config.kind == COMPUTE else ():
        if len(ranges) != len(aligned):
            raise ConfigError(f"training.budget_step_ranges.{family} has {len(ranges)} entries but there are "
                              f"{len(aligned)} budgets (one [min_steps, max_steps] per budget)")
    # Comparisons written so that NaN fails them; infinities are rejected by name.
    if not (0 < t.lr_min <= t.lr_max < math.inf):
        raise ConfigError(f"training.lr_min/lr_max must satisfy 0 < lr_min <= lr_max < inf, got {t.lr_min}, {t.lr_max}")
    for family, lo, hi in t.lr_ranges:
        get_family(family)  # ConfigError naming an unknown family
        if not (0 < lo <= hi < math.inf):
            raise ConfigError(f"training.lr_ranges.{family} must satisfy 0 < lr_min <= lr_max < inf, got {lo}, {hi}")
    for family, _ in t.lr_batch_scalings:
        get_family(family)  # ConfigError naming an unknown family
    for key, scaling in [("lr_batch_scaling", t.lr_batch_scaling),
                         *((f"lr_batch_scalings.{family}", s) for family, s in t.lr_batch_scalings)]:
        if scaling not in LR_BATCH_SCALINGS:
            raise ConfigError(f"training.{key} must be one of {', '.join(map(repr, LR_BATCH_SCALINGS))}, "
                              f"got {scaling!r}")
    if config.sampler not in SAMPLERS:
        raise ConfigError(f"unknown sampler {config.sampler!r} (known: {', '.join(SAMPLERS)})")
    _positive("training.grid_depth", t.grid_depth)
    if not 0 <= t.warmup_fraction < 1:
        raise ConfigError(f"training.warmup_fraction must be in [0, 1), got {t.warmup_fraction}")
    if not 0 <= t.weight_decay < math.inf:
        raise ConfigError(f"training.weight_decay must be a finite number >= 0, got {t.weight_decay}")
    if not 0 < t.grad_clip < math.inf:
        raise ConfigError(f"training.grad_clip must be a finite number > 0, got {t.grad_clip}")
    if not t.checkpoint_seconds >= 0:
        raise ConfigError(f"training.checkpoint_seconds must be >= 0 (inf: never), got {t.checkpoint_seconds}")
    if t.val_samples < 0:
        raise ConfigError(f"training.val_samples must be >= 0, got {t.val_samples}")
    if not RAY_GRANULARITY <= r.cpus_per_trial < math.inf:
        raise ConfigError(f"cpus-per-trial must be a finite number >= {RAY_GRANULARITY:g} (Ray's smallest "
                          f"resource unit), got {r.cpus_per_trial}")
    if not (r.gpus_per_trial == 0 or RAY_GRANULARITY <= r.gpus_per_trial < math.inf):
        raise ConfigError(f"gpus-per-trial must be 0 or a finite number >= {RAY_GRANULARITY:g} (Ray's smallest "
                          f"resource unit), got {r.gpus_per_trial}")
    _check_address(r.address)
    if r.max_concurrent < 0 or r.max_failures < 0:
        raise ConfigError("resources.max_concurrent and max_failures must be >= 0")
    if len(set(config.families)) != len(config.families):
        raise ConfigError(f"duplicate family in {list(config.families)}")
    for budget in config.budgets:
        if not math.isfinite(budget) or budget <= 0:
            raise ConfigError(f"budget must be a positive number of FLOPs, got {budget:g}")
    if config.kind not in KINDS:
        raise ConfigError(f"unknown study kind {config.kind!r} (known: {', '.join(KINDS)})")
    if config.kind == DATA:
        _validate_data_study(config)
        return
    if not config.budgets:
        raise ConfigError("budgets must be a non-empty list")
    names = [study_name(f, b) for f, b in config.studies()]
    if len(set(names)) != len(names):
        raise ConfigError(f"budgets {list(config.budgets)} collide at one significant digit (study names {names})")
    for family in config.families:
        space = space_for(family)  # ConfigError naming an unknown family
        for budget in config.budgets:
            space.check_budget(budget, config)
            if config.sampler == "grid":
                space.isoflop_grid(budget, config, config.trials)  # ConfigError when the grid cannot meet the budget


def _validate_data_study(config: StudyConfig) -> None:
    """A data study: sizes that fit the training split, a fixed valid shape per family, runs of >= 1 epoch."""
    ds, t = config.data_study, config.training
    if config.budgets:
        raise ConfigError("a data study (kind \"data\") has no budgets: its studies are data_study.train_sizes")
    if not ds.train_sizes:
        raise ConfigError("a data study needs [data_study] train_sizes (training scenes per study)")
    if len(set(ds.train_sizes)) != len(ds.train_sizes):
        raise ConfigError(f"duplicate size in data_study.train_sizes {list(ds.train_sizes)}")
    available = config.data.benchmark().split_sizes()[0]
    for n in ds.train_sizes:
        if not 0 < n <= available:
            raise ConfigError(f"data_study.train_sizes entry {n} must be in 1..{available} (the training split "
                              f"of {config.data.scenes} scenes): raise data.scenes")
    _positive("data_study.steps", ds.steps)
    if ds.steps * t.batch_size < max(ds.train_sizes):
        raise ConfigError(f"data_study.steps x training.batch_size = {ds.steps * t.batch_size} samples is less than "
                          f"one epoch of the largest training set ({max(ds.train_sizes)} scenes)")
    if t.batch_sizes:
        raise ConfigError("training.batch_sizes is per budget: a data study uses training.batch_size")
    if t.budget_step_ranges:
        raise ConfigError("training.budget_step_ranges is per budget: a data study has no budgets")
    if config.sampler == "grid" and config.trials > 1 and any(lo == hi for lo, hi in map(t.lr_range, config.families)):
        raise ConfigError(f"sampler 'grid': a family's learning-rate range is one value, too few for {config.trials} "
                          f"trials per size")
    for family, _ in ds.shapes:
        get_family(family)  # a misspelt family is an error; a family left out of this run (--family) is ignored
    for family in config.families:
        get_family(family)  # ConfigError naming an unknown family
        validate_shape(family, **ds.shape(family))  # ConfigError: no shape, or one the family rejects


def _check_address(address: str | None) -> None:
    """A Ray address is None, "auto", "local" or [scheme://]HOST:PORT with a port in 1..65535 (reachability is
    `study.pipeline.check_address`'s, at run time)."""
    if address is None or address in ("auto", "local"):
        return
    host, _, port = address.split("://", 1)[-1].rpartition(":")
    if not host or not port.isascii() or not port.isdigit() or any(c.isspace() or not c.isprintable() for c in host):
        raise ConfigError(f"malformed Ray address {address!r} (expected HOST:PORT, auto or local)")
    if not 0 < int(port) < 65536:
        raise ConfigError(f"Ray address {address!r}: port must be in 1..65535, got {port}")


def _positive(name: str, value: int) -> None:
    if value < 1:
        raise ConfigError(f"{name} must be >= 1, got {value}")
