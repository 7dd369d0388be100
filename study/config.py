"""Study configuration: a typed, frozen view of the TOML file (or the embedded default), validated in one place."""

from __future__ import annotations

import dataclasses
import math
import tomllib
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from study.benchmark.task import DataConfig  # the rigid-body task's [data] table (the default task)
from study.errors import ConfigError
from study.kinds.context import KindContext, nearest
from study.kinds.data import DataStudyConfig  # noqa: F401  (re-exported: the data kind's table)
from study.models.registry import family_names
from study.plugins import loader
from study.plugins.tables import omitted_defaults, parse_table, typed
from study.schema import CLAIM_NO_TRANSLATION, COMPUTE, ClaimFamilies, study_name
from study.sections import TrainingConfig, parse_training
from study.spec import ResourceConfig, RunSpec, StudySpec
from study.storage import DEFAULT_STORAGE

LR_BATCH_SCALINGS = ("none", "sqrt")   # training.lr_batch_scaling: how the lr ranges follow the batch size
DEFAULT_TASK = "rigid-body"
# The flagship comparison: which family is the equivariant one, its baselines, and the augmented baseline.
DEFAULT_CLAIMS = ClaimFamilies().as_attr()
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
class StudyConfig:
    """One `equiscale run`: a study per (family, budget) (kind "data": per (family, training-set size)),
    each with `trials` COMPLETE trials."""

    families: tuple[str, ...]
    budgets: tuple[float, ...] = ()
    trials: int = 6
    storage: str = DEFAULT_STORAGE
    seed: int = 0
    sampler: str = "tpe"        # "tpe" (Optuna's TPE), "grid" (an IsoFLOP grid of `trials` sizes, log-spaced) or
                                # "isoflop" (adaptive IsoFLOP refinement, settings in `[isoflop]`)
    data: DataConfig = DataConfig()
    training: TrainingConfig = TrainingConfig()
    resources: ResourceConfig = ResourceConfig()
    kind: str = COMPUTE
    data_study: Any = None      # the kind's own table (kind "data": its `[data_study]`, a DataStudyConfig)
    task: str = DEFAULT_TASK    # the task plugin (`equiscale.tasks` entry point, or a `[plugins] tasks` path)
    plugins: tuple[tuple[str, str, str], ...] = ()   # (group, name, "module:attribute") from `[plugins]`
    claims: tuple[tuple[str, Any], ...] = ()         # `[claims]`: overrides of DEFAULT_CLAIMS
    sampler_settings: Any = None                     # the sampler's own table (e.g. `[isoflop]`), None: defaults

    def plugin_path(self, group: str, name: str) -> str | None:
        """The import path the study file gives for plugin `name` of `group` (None: an installed entry point)."""
        return next((path for g, n, path in self.plugins if g == group and n == name), None)

    def batch_size_for(self, budget: float) -> int:
        """The batch size at `budget` (its `training.batch_sizes` entry, else batch_size)."""
        return _context(self, resolve_plugins=False).batch_size_for(budget)

    def step_range_for(self, family: str, budget: float) -> tuple[int, int]:
        """The step limits of `family`'s trials at `budget`."""
        return _context(self, resolve_plugins=False).step_range_for(family, budget)

    def lr_range_for(self, family: str, budget: float) -> tuple[float, float]:
        """The learning-rate range `family` searches at `budget`."""
        return _context(self, resolve_plugins=False).lr_range_for(family, budget)

    def studies(self) -> list[tuple[str, float]]:
        """(family, budget) pairs of a compute study in run order."""
        return [(family, budget) for family in self.families for budget in self.budgets]

    def specs(self) -> list[StudySpec]:
        """Every study of this run, resolved, in run order (either kind)."""
        return list(resolve(self).studies)


def _context(config: StudyConfig, *, resolve_plugins: bool = True) -> KindContext:
    """The kind's view of `config`: plugins loaded (families, spaces, task, sampler), never the config itself."""
    task = loader.load("tasks", config.task, path=config.plugin_path("tasks", config.task))
    kind = loader.load("kinds", config.kind)
    section = config.data_study if config.data_study is not None or not kind.section else kind.parse({}, kind.section)
    if resolve_plugins:
        families = tuple(_family(config, name) for name in config.families)
        spaces = ({f.name: loader.load("spaces", f.name, path=config.plugin_path("spaces", f.name)) for f in families}
                  if kind.budgets else {})
        sampler = loader.load("samplers", config.sampler)
    else:
        families, spaces, sampler = (), {}, None
    trials = sampler.target(config.sampler_settings, config.trials) if sampler is not None else config.trials
    return KindContext(families=families, spaces=spaces, budgets=tuple(config.budgets), trials=trials,
                       seed=config.seed, sampler=sampler, training=config.training, task=task,
                       task_settings=config.data, section=section, sampler_settings=config.sampler_settings,
                       known=frozenset(family_names()) | {n for g, n, _ in config.plugins if g == "families"})


def _family(config: StudyConfig, name: str):
    path = config.plugin_path("families", name)
    if path is None and name not in loader.registered("families"):
        raise ConfigError(f"unknown model family {name!r} (known: {', '.join(loader.names('families'))}; or give "
                          f"its import path in [plugins] families)")
    return loader.load("families", name, path=path)


def study_spec(config: StudyConfig, family: str, budget: float) -> StudySpec:
    """The resolved compute study of `family` at `budget` (a budget outside the config takes the run-wide batch size
    and step range), e.g. to ask its search space for a proposal or grid outside a run."""
    context = _context(replace(config, families=(family,), kind=COMPUTE))
    fam = context.families[0]
    return context.spec(name=study_name(family, budget), family=fam, kind=COMPUTE, budget=budget,
                        batch_size=context.batch_size_for(budget), space=context.spaces[family],
                        lr_range=context.lr_range_for(family, budget),
                        step_range=context.step_range_for(family, budget))


def claims(config: StudyConfig) -> dict[str, Any]:
    """Which family is the equivariant one and which are its baselines (the flagship's unless `[claims]` says; with
    baselines given and no `augmented`, the augmented baseline is the default one only if it is among them)."""
    given = dict(config.claims)
    out = {**DEFAULT_CLAIMS, **given}
    if "baselines" in given and "augmented" not in given and out["augmented"] not in out["baselines"]:
        out["augmented"] = None
    return out


def resolve(config: StudyConfig) -> RunSpec:
    """The run, resolved once: plugins loaded, the kind's checks run, one StudySpec per study."""
    context = _context(config)
    kind = loader.load("kinds", config.kind)
    kind.validate(context)
    return RunSpec(studies=tuple(kind.studies(context)), storage=config.storage, resources=config.resources,
                   task=context.task, task_settings=config.data, settings=_settings(config, context, kind),
                   claims=claims(config))


def settings(config: StudyConfig) -> dict:
    """The settings that shape every trial of a study; a resumed study must have been run with the same."""
    context = _context(config, resolve_plugins=False)
    return _settings(config, context, loader.load("kinds", config.kind))


def _settings(config: StudyConfig, context: KindContext, kind) -> dict:
    t = config.training
    return {"seed": config.seed, **context.task.record(config.data), "min_steps": t.min_steps,
            "max_steps": t.max_steps, "lr_min": t.lr_min, "lr_max": t.lr_max,
            "warmup_fraction": t.warmup_fraction, "weight_decay": t.weight_decay, "grad_clip": t.grad_clip,
            "evals": t.evals, "val_samples": t.val_samples,
            "lr_ranges": [list(r) for r in t.lr_ranges], "grid_depth": t.grid_depth, "sampler": config.sampler,
            **({"step_ranges": [list(r) for r in t.step_ranges]} if t.step_ranges else {}),  # absent: as before
            **({"budget_step_ranges": [[f, [list(r) for r in ranges]] for f, ranges in t.budget_step_ranges]}
               if t.budget_step_ranges else {}),
            **({"lr_batch_scaling": t.lr_batch_scaling} if t.lr_batch_scaling != "none" else {}),
            **({"lr_batch_scalings": [list(r) for r in t.lr_batch_scalings]} if t.lr_batch_scalings else {}),
            **({"task": config.task} if config.task != DEFAULT_TASK else {}),   # absent: the rigid-body task
            **({"sampler_settings": recorded(config.sampler_settings)}
               if config.sampler_settings is not None else {}),
            **kind.record(context)}
    # checkpoint_seconds is left out: when a trial saves its state does not change what it computes; so is
    # time_cap_seconds: it decides which runs end early, never what a finished run computes


def recorded(settings) -> dict:
    """A sampler's settings as a study stores them: every field, except those its class lists in
    `OMIT_AT_DEFAULT` (added after studies were stored) while they are at their defaults, so those studies resume."""
    defaults = omitted_defaults(settings)
    return {k: v for k, v in dataclasses.asdict(settings).items() if not (k in defaults and v == defaults[k])}


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


_nearest = nearest


DERIVED = {"aligned_budgets"}   # set by with_overrides (the file's budgets), never by a study file


def _from_dict(raw: dict, where: str) -> StudyConfig:
    """Build the dataclasses from parsed TOML, rejecting unknown keys and wrong types by name. `[plugins]` names
    import paths of families, spaces and tasks; the task parses `[data]`, the kind its own table."""
    top = {"families", "budgets", "trials", "storage", "seed", "sampler", "kind", "task", "data", "training",
           "resources", "plugins", "claims"}
    kwargs: dict[str, Any] = {}
    plugins = _plugins(raw.get("plugins", {}), f"{where}: [plugins]")
    if plugins:
        kwargs["plugins"] = plugins
    for name in ("kind", "task", "sampler", "storage"):
        if name in raw:
            kwargs[name] = typed(f"{where}: {name}", raw[name], str)
    kind_name = kwargs.get("kind", COMPUTE)
    kind = loader.load("kinds", kind_name)
    sampler = loader.load("samplers", kwargs.get("sampler", "tpe"))
    unknown = set(raw) - top - ({kind.section} if kind.section else set()) - ({sampler.section} if sampler.section else set())
    if unknown:
        sections = {k.section: n for n in loader.names("kinds") for k in [loader.load("kinds", n)] if k.section}
        for key in sorted(unknown & set(sections)):
            raise ConfigError(f"{where}: [{key}] needs kind = \"{sections[key]}\"")
        raise ConfigError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}")
    task_name = kwargs.get("task", DEFAULT_TASK)
    task_path = next((p for g, n, p in plugins if g == "tasks" and n == task_name), None)
    task = loader.load("tasks", task_name, path=task_path)
    for name, value in raw.items():
        if name in ("plugins", "kind", "task", "sampler", "storage"):
            continue
        if name == "data":
            kwargs["data"] = task.parse(_table(value, f"{where}: [data]"), f"{where}: [data]")
        elif name == sampler.section:
            kwargs["sampler_settings"] = sampler.parse(_table(value, f"{where}: [{name}]"), f"{where}: [{name}]")
        elif name == kind.section:
            kwargs["data_study"] = kind.parse(_table(value, f"{where}: [{name}]"), f"{where}: [{name}]")
        elif name == "training":
            kwargs[name] = _section(TrainingConfig, _table(value, f"{where}: [{name}]"), f"{where}: [{name}]")
        elif name == "resources":
            kwargs[name] = parse_table(ResourceConfig, _table(value, f"{where}: [{name}]"), f"{where}: [{name}]")
        elif name == "claims":
            kwargs[name] = _claims(_table(value, f"{where}: [claims]"), f"{where}: [claims]")
        elif name in ("families", "budgets"):
            if not isinstance(value, list) or not value:
                raise ConfigError(f"{where}: {name} must be a non-empty list")
            kwargs[name] = tuple(typed(f"{where}: {name}", v, str if name == "families" else float) for v in value)
        else:
            kwargs[name] = typed(f"{where}: {name}", value, int)   # trials, seed
    if "data" not in kwargs and task_name != DEFAULT_TASK:
        kwargs["data"] = task.parse({}, f"{where}: [data]")       # the task's own defaults
    for required in ("families", "budgets") if kind.budgets else ("families",):
        if required not in kwargs:
            raise ConfigError(f"{where}: missing key {required!r}")
    if not kind.budgets and "budgets" in kwargs:
        raise ConfigError(f"{where}: a {kind_name} study (kind = \"{kind_name}\") has no budgets"
                          + (f": give [{kind.section}]" if kind.section else ""))
    return StudyConfig(**kwargs)


def _table(value: Any, where: str) -> dict:
    if not isinstance(value, dict):
        raise ConfigError(f"{where} must be a table")
    return value


def _plugins(raw: Any, where: str) -> tuple[tuple[str, str, str], ...]:
    """`[plugins] families = { mlp = "my_pkg.mlp:family" }, tasks = {...}, spaces = {...}` as (group, name, path)."""
    out = []
    for group, table in _table(raw, where).items():
        if group not in ("families", "spaces", "tasks"):
            raise ConfigError(f"{where}: unknown plugin group {group!r} (known: families, spaces, tasks; samplers "
                              f"and kinds are installed entry points)")
        for name, path in _table(table, f"{where} {group}").items():
            path = typed(f"{where} {group}.{name}", path, str)
            if not path or path.startswith(":") or path.count(":") > 1:
                raise ConfigError(f"{where} {group}.{name} must be \"package.module\" or \"package.module:attribute\", "
                                  f"got {path!r}")
            out.append((group, name, path))
    return tuple(out)


def _claims(raw: dict, where: str) -> tuple[tuple[str, Any], ...]:
    """`[claims] equivariant = "gatr", baselines = [...], augmented = "transformer-aug",
    no_translation = "transformer-aug-notrans"` (each optional)."""
    known = [*DEFAULT_CLAIMS, CLAIM_NO_TRANSLATION]
    unknown = set(raw) - set(known)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(sorted(unknown))} (known: {', '.join(known)})")
    out = []
    for key, value in raw.items():
        if key == "baselines":
            if not isinstance(value, list) or not value:
                raise ConfigError(f"{where} baselines must be a non-empty list of families, got {value!r}")
            out.append((key, [typed(f"{where} baselines", v, str) for v in value]))
        else:
            out.append((key, typed(f"{where} {key}", value, str)))
    return tuple(out)


def _section(cls, raw: dict, where: str):
    return parse_training(raw, where, derived=frozenset(DERIVED))

def validate(config: StudyConfig) -> None:
    """Every check that needs no Ray and no storage: ranges, plugins, and the kind's checks (budgets vs the
    smallest shapes, a data study's sizes and shapes). Returns nothing; `resolve` gives the resolved run."""
    t, r = config.training, config.resources
    _positive("trials", config.trials)
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
        _known(config, family)
        if not 100 <= lo <= hi:
            raise ConfigError(f"training.{where} must satisfy 100 <= min_steps <= max_steps, got {lo}, {hi}")
    for family, ranges in t.budget_step_ranges if loader.load("kinds", config.kind).budgets else ():
        if len(ranges) != len(aligned):
            raise ConfigError(f"training.budget_step_ranges.{family} has {len(ranges)} entries but there are "
                              f"{len(aligned)} budgets (one [min_steps, max_steps] per budget)")
    # Comparisons written so that NaN fails them; infinities are rejected by name.
    if not (0 < t.lr_min <= t.lr_max < math.inf):
        raise ConfigError(f"training.lr_min/lr_max must satisfy 0 < lr_min <= lr_max < inf, got {t.lr_min}, {t.lr_max}")
    for family, lo, hi in t.lr_ranges:
        _known(config, family)
        if not (0 < lo <= hi < math.inf):
            raise ConfigError(f"training.lr_ranges.{family} must satisfy 0 < lr_min <= lr_max < inf, got {lo}, {hi}")
    for family, _ in t.lr_batch_scalings:
        _known(config, family)
    for key, scaling in [("lr_batch_scaling", t.lr_batch_scaling),
                         *((f"lr_batch_scalings.{family}", s) for family, s in t.lr_batch_scalings)]:
        if scaling not in LR_BATCH_SCALINGS:
            raise ConfigError(f"training.{key} must be one of {', '.join(map(repr, LR_BATCH_SCALINGS))}, "
                              f"got {scaling!r}")
    loader.load("samplers", config.sampler)   # ConfigError naming an unknown sampler
    _positive("training.grid_depth", t.grid_depth)
    if not 0 <= t.warmup_fraction < 1:
        raise ConfigError(f"training.warmup_fraction must be in [0, 1), got {t.warmup_fraction}")
    if not 0 <= t.weight_decay < math.inf:
        raise ConfigError(f"training.weight_decay must be a finite number >= 0, got {t.weight_decay}")
    if not 0 < t.grad_clip < math.inf:
        raise ConfigError(f"training.grad_clip must be a finite number > 0, got {t.grad_clip}")
    if not t.checkpoint_seconds >= 0:
        raise ConfigError(f"training.checkpoint_seconds must be >= 0 (inf: never), got {t.checkpoint_seconds}")
    if not t.time_cap_seconds >= 0:
        raise ConfigError(f"training.time_cap_seconds must be >= 0 (0: no cap), got {t.time_cap_seconds}")
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
    if isinstance(r.stack, bool) or not isinstance(r.stack, int) or r.stack < 1:
        raise ConfigError(f"resources.stack must be an integer >= 1 (1: every trial trains alone), got {r.stack!r}")
    if r.compile and r.stack > 1:
        raise ConfigError(f"resources.compile compiles trials that train alone: it does not combine with "
                          f"resources.stack = {r.stack} (set stack = 1 or compile = false)")
    if len(set(config.families)) != len(config.families):
        raise ConfigError(f"duplicate family in {list(config.families)}")
    for budget in config.budgets:
        if not math.isfinite(budget) or budget <= 0:
            raise ConfigError(f"budget must be a positive number of FLOPs, got {budget:g}")
    loader.load("kinds", config.kind)         # ConfigError naming an unknown kind
    resolve(config)   # the plugins load, and the kind's checks pass


def _known(config: StudyConfig, family: str) -> None:
    """ConfigError naming a family that is neither installed nor given an import path in `[plugins]`."""
    if family not in loader.registered("families") and config.plugin_path("families", family) is None:
        raise ConfigError(f"unknown model family {family!r} (known: {', '.join(loader.names('families'))})")


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
