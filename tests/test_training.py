"""One training run: schedule, reproducibility, learning, metrics, divergence as a specific error."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch

from study.benchmark import load_dataset
from study.flops import param_count
from study.models import build_model
from study.training import DivergenceError, eval_steps, lr_factor, mse, train


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return load_dataset(scenes=120, bodies=3, seed=0, cache_dir=tmp_path_factory.mktemp("cache"))


def test_schedule_warms_up_linearly_then_decays_to_zero_at_the_last_step():
    steps, warmup = 200, 10
    factors = [lr_factor(s, steps=steps, warmup=warmup) for s in range(steps + 1)]
    assert factors[:warmup] == pytest.approx([(s + 1) / warmup for s in range(warmup)])
    assert factors[warmup] == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(factors[warmup:], factors[warmup + 1:]))
    mid = warmup + (steps - warmup) // 2
    assert factors[mid] == pytest.approx(0.5 * (1 + math.cos(math.pi * (mid - warmup) / (steps - warmup))))
    assert factors[steps] == pytest.approx(0.0, abs=1e-12)


def test_eval_steps_are_spread_and_end_at_the_last_step():
    assert eval_steps(100, 4) == [25, 50, 75, 100]
    assert eval_steps(3, 10) == [1, 2, 3]


def test_run_learns_reports_its_curve_and_returns_the_metrics(dataset):
    shape = {"width": 16, "depth": 1}
    curve = []
    metrics = train("transformer", shape, lr=3e-3, steps=120, batch_size=16, dataset=dataset, seed=3,
                    evals=4, threads=1, report=lambda step, loss: curve.append((step, loss)))
    assert [s for s, _ in curve] == eval_steps(120, 4)
    assert metrics["val_loss"] == curve[-1][1]
    torch.manual_seed(3)
    untrained = mse(build_model("transformer", **shape), dataset.val)  # the same initialisation
    assert metrics["val_loss"] < 0.5 * untrained
    assert metrics["samples"] == 120 * 16 and metrics["steps"] == 120
    assert metrics["params"] == param_count("transformer", **shape)
    assert math.isfinite(metrics["test_loss"]) and metrics["wall_seconds"] > 0
    assert metrics["equivariance_error"] > 1e-3  # a plain transformer is not equivariant


def test_same_seed_same_run_other_seed_other_run(dataset):
    kwargs = dict(lr=1e-3, steps=30, batch_size=8, dataset=dataset, evals=1, threads=1)
    a = train("transformer", {"width": 8, "depth": 1}, seed=1, **kwargs)
    b = train("transformer", {"width": 8, "depth": 1}, seed=1, **kwargs)
    c = train("transformer", {"width": 8, "depth": 1}, seed=2, **kwargs)
    assert a["val_loss"] == b["val_loss"] and a["val_loss"] != c["val_loss"]


def test_gatr_run_stays_equivariant_and_augmented_transformer_runs(dataset):
    gatr = train("gatr", {"mv_channels": 2, "s_channels": 4, "depth": 1}, lr=1e-3, steps=10, batch_size=8,
                 dataset=dataset, evals=1, threads=1)
    assert gatr["equivariance_error"] < 1e-4
    aug = train("transformer-aug", {"width": 8, "depth": 1}, lr=1e-3, steps=10, batch_size=8, dataset=dataset,
                evals=1, threads=1)
    plain = train("transformer", {"width": 8, "depth": 1}, lr=1e-3, steps=10, batch_size=8, dataset=dataset,
                  evals=1, threads=1)
    assert aug["val_loss"] != plain["val_loss"]  # same seed and batches: only the augmentation differs


def test_non_finite_loss_raises_divergence_error_with_the_step(dataset):
    broken = dataclasses.replace(dataset, train=dataclasses.replace(
        dataset.train, posT=torch.full_like(dataset.train.posT, float("nan"))))
    with pytest.raises(DivergenceError, match="step 1") as info:
        train("transformer", {"width": 8, "depth": 1}, lr=1e-3, steps=20, batch_size=8, dataset=broken, threads=1)
    assert info.value.step == 1 and math.isnan(info.value.loss)
