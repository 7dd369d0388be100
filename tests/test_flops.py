"""The analytic FLOP count against torch's FlopCounterMode on a real training step."""

import pytest
import torch
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

from study.flops import forward_flops, param_count, training_flops
from study.models import build_model, get_family

SHAPES = {
    "transformer": [dict(width=64, depth=2), dict(width=128, depth=1), dict(width=96, depth=3)],
    "transformer-aug": [dict(width=64, depth=1)],
    "gatr": [
        dict(mv_channels=16, s_channels=32, depth=1),
        dict(mv_channels=24, s_channels=24, depth=2),
        dict(mv_channels=32, s_channels=16, depth=1),
    ],
}
CASES = [(family, shape) for family, shapes in SHAPES.items() for shape in shapes]


def _batch(scenes, bodies=4, markers=4, props=8):
    g = torch.Generator().manual_seed(0)
    pos0 = torch.randn(scenes, bodies, markers, 3, generator=g)
    return pos0, torch.randn(pos0.shape, generator=g), torch.rand(scenes, bodies, props, generator=g)


def _measure(model, batch, *, backward):
    # The fused CPU attention kernel counts as 0 FLOPs; the math kernel is counted exactly.
    with sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter:
        loss = model(*batch).square().mean()
        if backward:
            loss.backward()
    return counter.get_total_flops()


@pytest.mark.parametrize("family, shape", CASES)
def test_forward_count_is_exact(family, shape):
    torch.manual_seed(0)
    model = build_model(family, **shape)
    batch = _batch(6, bodies=5)
    measured = _measure(model, batch, backward=False)
    assert measured == 6 * forward_flops(family, bodies=5, **shape)


@pytest.mark.parametrize("family, shape", CASES)
def test_training_step_is_three_forwards(family, shape):
    torch.manual_seed(0)
    model = build_model(family, **shape)
    measured = _measure(model, _batch(8), backward=True)
    analytic = training_flops(family, samples=8, bodies=4, **shape)
    assert abs(measured / analytic - 1) <= 0.02


@pytest.mark.parametrize("family, shape", CASES)
def test_param_count_matches_module(family, shape):
    model = build_model(family, **shape)
    assert param_count(family, **shape) == sum(p.numel() for p in model.parameters() if p.requires_grad)


@pytest.mark.parametrize("family", list(SHAPES))
def test_counts_grow_with_shape(family):
    fam = get_family(family)
    small = dict(fam.default_shape)
    big = {k: 2 * v for k, v in small.items()}
    assert forward_flops(family, **big) > forward_flops(family, **small)
    assert param_count(family, **big) > param_count(family, **small)
    assert forward_flops(family, bodies=8, **small) > forward_flops(family, bodies=4, **small)
