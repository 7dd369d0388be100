"""The tiny study the end-to-end tests run: batch 16, 100-300 steps, 200 scenes of 3 bodies, 1 CPU per trial."""

from __future__ import annotations

from study.config import DataConfig, ResourceConfig, StudyConfig, TrainingConfig, validate


# Each family's learning-rate range in the tiny study (a study file's [training] lr_ranges).
TINY_LR_RANGES = (("transformer", 1e-3, 4e-3), ("transformer-aug", 1e-3, 4e-3), ("gatr", 2e-3, 8e-3))


def tiny_config(storage: str, *, families=("transformer", "gatr"), budgets=(1e9, 2e9), trials=3,
                max_steps: int = 300) -> StudyConfig:
    """The tiny study as a config (for `run_study`)."""
    config = StudyConfig(
        families=tuple(families), budgets=tuple(budgets), trials=trials, storage=storage, seed=0,
        data=DataConfig(scenes=200, bodies=3, seed=0),
        training=TrainingConfig(batch_size=16, min_steps=100, max_steps=max_steps, evals=3, val_samples=64,
                                lr_ranges=TINY_LR_RANGES),
        resources=ResourceConfig(cpus_per_trial=1, max_concurrent=2, max_failures=1),
    )
    validate(config)
    return config


def tiny_toml(*, families=("transformer",), budgets=(1e9, 2e9), trials=4, max_steps: int = 300) -> str:
    """The tiny study as a study file (for `equiscale run FILE`)."""
    return f"""
families = [{", ".join(f'"{f}"' for f in families)}]
budgets = [{", ".join(repr(float(b)) for b in budgets)}]
trials = {trials}
[data]
scenes = 200
bodies = 3
[training]
batch_size = 16
min_steps = 100
max_steps = {max_steps}
lr_ranges = {{ transformer = [1e-3, 4e-3], transformer-aug = [1e-3, 4e-3], gatr = [2e-3, 8e-3] }}
evals = 3
val_samples = 64
[resources]
cpus_per_trial = 1
max_concurrent = 2
max_failures = 1
"""
