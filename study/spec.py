"""The resolved run: one frozen `StudySpec` per Optuna study and a `RunSpec` for the whole run.

`study.config` resolves a study file once into these; everything below it (search spaces, the Tune searcher,
the trainable, resume, the estimate, the schema) reads them and never the config. A spec carries the plugin
objects themselves (family, search space, task, sampler), so a user's family loaded from an import path
reaches the Ray workers the same way as a built-in one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Mapping


@dataclass(frozen=True)
class ResourceConfig:
    """Where and how trials run: per-trial allotment, concurrency, retries, Ray address."""

    cpus_per_trial: float = 1.0
    gpus_per_trial: float = 0.0
    max_concurrent: int = 0     # 0 = as many as the cluster's CPUs (and GPUs) allow
    max_failures: int = 2       # retries of a trial whose worker failed (not of a diverged run)
    address: str | None = None  # existing Ray cluster; None = start a local one
    stack: int = 1              # replicates trained as one stacked model per worker, at most (1: each alone)
    compile: bool = False       # each trial's model through torch.compile (the same function; its trials say so)


@dataclass(frozen=True)
class Optimiser:
    """What every trial of a run shares besides its proposal: optimiser, schedule, validation, checkpoints."""

    weight_decay: float = 0.01
    warmup_fraction: float = 0.05
    grad_clip: float = 1.0
    evals: int = 5
    val_samples: int = 256
    checkpoint_seconds: float = 300.0
    time_cap_seconds: float = math.inf  # training seconds after which a run stops, its trial FAIL (inf: none)


@dataclass(frozen=True, eq=False)
class StudySpec:
    """One Optuna study of a run, resolved: which family (object) trains on which task, how its space is bounded,
    and what every trial shares.

    A compute study searches shapes at `budget` training FLOPs; a data study (`train_size` > 0) trains a fixed
    `shape` for `steps` steps on the first `train_size` training scenes and validates at `eval_at`.
    """

    name: str
    family: Any                         # a study.plugins.Family
    kind: str                           # the study kind's name ("compute", "data", or a plugin's)
    budget: float                       # training FLOPs of each trial
    batch_size: int
    space: Any                          # a study.plugins.SearchSpace
    sampler: Any                        # a study.plugins.Sampler
    task: Any                           # a study.plugins.Task
    sample: Mapping[str, int]           # the task's sample dimensions (FLOP counts, building)
    trials: int                         # the target: COMPLETE trials (a grid: distinct points)
    seed: int                           # the run's seed (trial seeds derive from it)
    lr_range: tuple[float, float]
    step_range: tuple[int, int] = (1, 1)
    grid_depth: int = 2
    train_size: int = 0                 # data study: training scenes (0: the whole training split)
    shape: Mapping[str, int] = field(default_factory=dict)   # data study: the fixed shape
    steps: int = 0                      # data study: the fixed step count
    eval_at: tuple[int, ...] = ()       # data study: validation after these steps (ends of epochs)
    optimiser: Optimiser = Optimiser()
    sampler_settings: Any = None        # the sampler's own parsed table (e.g. `[isoflop]`), None: its defaults

    @property
    def family_name(self) -> str:
        return self.family.name


@dataclass(frozen=True, eq=False)
class RunSpec:
    """Everything `run_study` needs, resolved once from the config: the studies, where they go, how they run."""

    studies: tuple[StudySpec, ...]
    storage: str
    resources: ResourceConfig
    task: Any
    task_settings: Any
    settings: Mapping[str, Any]         # what a resumed study must have been run with
    claims: Mapping[str, Any]           # which family is the equivariant one and which are its baselines

    @property
    def names(self) -> list[str]:
        return [s.name for s in self.studies]
