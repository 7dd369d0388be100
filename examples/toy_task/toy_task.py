"""A toy task defined outside equiscale: free particles in flight, with its own data and no simulator.

A sample is K bodies of M marker points each (the rigid-body task's array format, so every built-in family
runs on it): positions and velocities at t=0 and P per-body scalars in; positions after `horizon` seconds of
free flight out (posT = pos0 + horizon · vel0, plus a small drift set by the first scalar). The physics is
E(3)-equivariant, so the equivariance check applies unchanged. The data is generated with NumPy from a seed
in milliseconds and never cached. Registered by an import path in the study file:

    task = "ballistic"
    [plugins]
    tasks = { ballistic = "toy_task:task" }
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from typing import Any, Mapping

import numpy as np
import torch

from study.benchmark.format import Dataset, Split
from study.errors import ConfigError
from study.models.equivariance import equivariance_error
from study.plugins.tables import parse_table

MARKERS, PROPS = 4, 2


@dataclass(frozen=True)
class Settings:
    """The study file's `[data]` table for this task."""

    scenes: int = 2000
    bodies: int = 3
    seed: int = 0
    horizon: float = 0.5
    val_fraction: float = 0.1
    test_fraction: float = 0.1

    def sizes(self) -> tuple[int, int, int]:
        val, test = int(self.scenes * self.val_fraction), int(self.scenes * self.test_fraction)
        return self.scenes - val - test, val, test


@dataclass(frozen=True)
class BallisticTask:
    name: str = "ballistic"

    def parse(self, raw: Mapping[str, Any], where: str) -> Settings:
        settings = parse_table(Settings, raw, where)
        if settings.scenes < 10 or settings.bodies < 1 or not settings.horizon > 0:
            raise ConfigError(f"{where}: needs scenes >= 10, bodies >= 1 and horizon > 0")
        return settings

    def sample_dims(self, settings: Settings) -> dict[str, int]:
        return {"bodies": settings.bodies, "markers": MARKERS, "props": PROPS}

    def train_scenes(self, settings: Settings) -> int:
        return settings.sizes()[0]

    def describe(self, settings: Settings) -> str:
        return f"ballistic dataset: {settings.scenes} scenes of {settings.bodies} bodies (seed {settings.seed})"

    def record(self, settings: Settings) -> dict:
        return {"bodies": settings.bodies}

    def dataset_key(self, settings: Settings) -> str:
        digest = hashlib.sha256(json.dumps(asdict(settings), sort_keys=True).encode()).hexdigest()[:12]
        return f"ballistic-{digest}"

    def load(self, settings: Settings, *, cache_dir: Any = None, progress: bool = False) -> Dataset:
        rng = np.random.default_rng(settings.seed)
        S, K = settings.scenes, settings.bodies
        centre = rng.normal(size=(S, K, 1, 3))
        pos0 = centre + 0.1 * rng.normal(size=(S, K, MARKERS, 3))                 # (S, K, M, 3)
        vel0 = np.repeat(rng.normal(size=(S, K, 1, 3)), MARKERS, axis=2)          # (S, K, M, 3): rigid translation
        props = rng.uniform(0.5, 1.5, size=(S, K, PROPS))                         # (S, K, P)
        posT = pos0 + settings.horizon * props[:, :, None, :1] * vel0             # drift scaled by the first prop
        arrays = [torch.from_numpy(a.astype(np.float32)) for a in (pos0, vel0, props, posT)]
        train, val, _ = settings.sizes()
        cut = (slice(0, train), slice(train, train + val), slice(train + val, S))
        splits = [Split(*(a[c] for a in arrays)) for c in cut]
        return Dataset(train=splits[0], val=splits[1], test=splits[2], key=self.dataset_key(settings))

    def batch(self, split: Split, index: Any):
        return (split.pos0[index], split.vel0[index], split.props[index]), split.posT[index]

    def augment(self, inputs: tuple, target: torch.Tensor, generator: torch.Generator):
        return inputs, target   # no augmentation defined for this task

    def errors(self, prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return (prediction.float() - target) ** 2

    def equivariance_error(self, model: torch.nn.Module, split: Split, generator: torch.Generator) -> float:
        sample = split[: min(64, len(split))]
        return float(equivariance_error(model, sample.pos0, sample.vel0, sample.props, generator=generator))


task = BallisticTask()
