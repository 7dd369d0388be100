"""The study files shipped in studies/ are valid, and say what they promise (checked without running them)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from search_spaces import space_for
from study.config import study_spec
from study.config import load_config
from study.tune import plan_defaults

STUDIES = Path(__file__).resolve().parents[1] / "studies"


@pytest.mark.parametrize("name", ["cpu.toml", "cpu-confirm2.toml", "cpu-confirm3.toml", "gpu.toml"])
def test_study_file_loads_and_every_grid_meets_every_budget(name):
    """A grid study has its `trials` sizes at every budget; an adaptive IsoFLOP study at least the 3 sizes a
    bracketed minimum needs (counted here from the space's feasible table within the step limits)."""
    config = load_config(STUDIES / name)          # validate(): every family's grid at every budget
    assert math.log10(max(config.budgets) / min(config.budgets)) >= 2      # at least two decades
    for family, budget in config.studies():
        spec = study_spec(config, family, budget)
        if config.sampler == "isoflop":
            assert len(space_for(family).feasible(spec)[spec.grid_depth]) >= 3, (family, budget)
        else:
            grid = space_for(family).grid(spec, config.trials)
            assert len(grid["fwd_flops"]) == config.trials


def test_gpu_study_trains_on_cuda_with_fractional_gpus_from_1e15():
    config = load_config(STUDIES / "gpu.toml")
    assert min(config.budgets) >= 1e15 and 0 < config.resources.gpus_per_trial < 1
    assert plan_defaults(config.specs()[0], config.resources).device == "cuda"   # bf16 autocast follows on CUDA


@pytest.mark.parametrize("name", ["cpu.toml"])
def test_cpu_study_data_regime_does_not_repeat_at_the_largest_budget(name):
    """At the largest budget no run of any family (so its best run, whichever it is) sees each training scene
    more than 4 times: every proposal's step count lies within its family's step range."""
    config = load_config(STUDIES / name)
    train_scenes = config.data.benchmark().split_sizes()[0]
    budget = max(config.budgets)
    batch = config.batch_size_for(budget)
    for family in config.families:
        most_steps = config.step_range_for(family, budget)[1]
        assert most_steps * batch / train_scenes <= 4.0, family
