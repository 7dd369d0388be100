"""The rigid-body benchmark as a `study.plugins.Task`: the built-in task (entry point `rigid-body`).

A sample is one scene of K bodies with M markers: inputs (pos0, vel0, props), target posT; the loss is the
mean squared error of the predicted marker positions; the augmentation is a random E(3) element per scene
(Haar rotation, a reflection with probability 1/2, a translation: `study.benchmark.transforms.random_e3`);
the equivariance check compares f(g·x) with g·f(x) on 64 validation scenes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import torch

from study.benchmark.config import BenchmarkConfig
from study.benchmark.format import MARKERS, PROPS, Split
from study.benchmark.memory import check_fits_memory
from study.benchmark.transforms import REFLECTION_PROB, TRANSLATION_SCALE, random_e3, transform_batch
from study.plugins.tables import parse_table

EQUIVARIANCE_SCENES = 64


@dataclass(frozen=True)
class DataConfig:
    """Which rigid-body dataset every trial trains on (the study file's `[data]` table)."""

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
class RigidBodyTask:
    """Simulated rigid-body interactions (MuJoCo): predict every marker's position after the horizon."""

    name: str = "rigid-body"

    def parse(self, raw: Mapping[str, Any], where: str) -> DataConfig:
        settings = parse_table(DataConfig, raw, where)
        check_fits_memory(settings.benchmark())  # ConfigError naming a bad setting, or data too big for memory
        return settings

    def sample_dims(self, settings: DataConfig) -> dict[str, int]:
        return {"bodies": settings.bodies, "markers": MARKERS, "props": PROPS}

    def train_scenes(self, settings: DataConfig) -> int:
        return settings.benchmark().split_sizes()[0]

    def describe(self, settings: DataConfig) -> str:
        return f"dataset: {settings.scenes} scenes of {settings.bodies} bodies (seed {settings.seed})"

    def dataset_key(self, settings: DataConfig) -> str:
        return settings.benchmark().key

    def record(self, settings: DataConfig) -> dict:
        return {"bodies": settings.bodies}   # the rest enters the dataset key

    def load(self, settings: DataConfig, *, cache_dir: Any = None, progress: bool = False):
        from study.benchmark.dataset import load_dataset

        return load_dataset(settings.benchmark(), cache_dir=cache_dir, progress=progress)

    def batch(self, split: Split, index: Any) -> tuple[tuple[torch.Tensor, ...], torch.Tensor]:
        """((pos0, vel0, props), posT) of the scenes `index` selects: (B, K, M, 3) ×2, (B, K, P); (B, K, M, 3)."""
        return (split.pos0[index], split.vel0[index], split.props[index]), split.posT[index]

    def augment(self, inputs: tuple, target: torch.Tensor, generator: torch.Generator, *,
                translation_scale: float = TRANSLATION_SCALE, reflection_prob: float = REFLECTION_PROB):
        """One random E(3) element per scene applied to inputs and target alike (`translation_scale` 0: rotations
        and reflections only; a family's `augment_options` set these)."""
        pos0, vel0, props = inputs
        R, t = random_e3(pos0.shape[0], generator=generator, translation_scale=translation_scale,
                         reflection_prob=reflection_prob)                             # (B, 3, 3), (B, 3)
        pos0, vel0, props, target = transform_batch(R.to(pos0.device), t.to(pos0.device), pos0, vel0, props, target)
        return (pos0, vel0, props), target

    def errors(self, prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Squared error per coordinate (B, K, M, 3): the loss is their mean (MSE)."""
        return (prediction.float() - target) ** 2

    def equivariance_error(self, model: torch.nn.Module, split: Split, generator: torch.Generator) -> float:
        from study.models.equivariance import equivariance_error

        sample = split[: min(EQUIVARIANCE_SCENES, len(split))]
        return float(equivariance_error(model, sample.pos0, sample.vel0, sample.props, generator=generator))


task = RigidBodyTask()
