"""benchmarks/gatr_plateau.py: a probe run's options reach its network and its plan (init seed, warm-up, variant)."""

from __future__ import annotations

import torch

from study.models.registry import RIGID_BODY_SAMPLE
from tests.scripts import load_benchmark

SHAPE = {"mv_channels": 2, "s_channels": 4, "depth": 2}


def _weights(model):
    return [p.detach().clone() for p in model.parameters()]


def test_an_init_seed_draws_the_parameters_whatever_the_global_seed_and_leaves_the_run_seed_alone():
    plateau = load_benchmark("gatr_plateau")
    plan = plateau.plan_for(SHAPE, lr=0.012, steps=10, batch=8, seed=602, init_seed=609, warmup=0.2)
    assert plan.seed == 602 and plan.warmup_fraction == 0.2
    torch.manual_seed(0)
    first = _weights(plan.model.build(RIGID_BODY_SAMPLE, SHAPE))
    torch.manual_seed(1)
    second = _weights(plan.model.build(RIGID_BODY_SAMPLE, SHAPE))
    torch.manual_seed(609)   # what the plain family draws from seed 609
    own = _weights(plateau.plan_for(SHAPE, lr=0.012, steps=10, batch=8, seed=609).model.build(RIGID_BODY_SAMPLE, SHAPE))
    assert all(torch.equal(a, b) and torch.equal(a, c) for a, b, c in zip(first, second, own, strict=True))


def test_the_half_init_variant_halves_the_multivector_weights_of_the_same_draws():
    plateau = load_benchmark("gatr_plateau")
    torch.manual_seed(3)
    half = dict(plateau.plan_for(SHAPE, lr=0.012, steps=10, batch=8, seed=3, variant="half-init")
                .model.build(RIGID_BODY_SAMPLE, SHAPE).named_parameters())
    torch.manual_seed(3)
    plain = dict(plateau.plan_for(SHAPE, lr=0.012, steps=10, batch=8, seed=3).model.build(RIGID_BODY_SAMPLE, SHAPE)
                 .named_parameters())
    assert torch.equal(half["embed.weight"], 0.5 * plain["embed.weight"])
    assert torch.equal(half["embed.scalar.weight"], plain["embed.scalar.weight"])


def test_the_vel_quarter_variant_builds_the_network_with_velocities_at_a_quarter():
    plateau = load_benchmark("gatr_plateau")
    model = plateau.plan_for(SHAPE, lr=0.012, steps=10, batch=8, seed=3, variant="vel-quarter").model.build(
        RIGID_BODY_SAMPLE, SHAPE)
    plain = plateau.plan_for(SHAPE, lr=0.012, steps=10, batch=8, seed=3).model.build(RIGID_BODY_SAMPLE, SHAPE)
    assert model.velocity_scale == 0.25 and plain.velocity_scale == 1.0
