"""The analytic FLOP counts against torch's FlopCounterMode on real training steps.

Shapes: the extremes of every family's search-space grid (search_spaces/: depth 1-4, transformer
width 8-16384, GATr mv_channels 1-4096 with s = 2·mv). Small shapes run on the CPU with an Adam
step; shapes too large to hold run on the meta device, where the same operators are counted
without arithmetic (a test shows both devices count alike).
"""

import pytest
import torch
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

from study.flops import (forward_flops, nominal_training_flops, param_count, sample_training_flops,
                         step_flops, training_flops)
from study.models import build_model, get_family


def _gatr(mv, depth):
    return dict(mv_channels=mv, s_channels=2 * mv, depth=depth)


def _transformer(width, depth):
    return dict(width=width, depth=depth)


# (family, shape, device): grid extremes at depth 1 and 4, plus a few shapes in between
CPU_CASES = [
    *[(f, _transformer(w, d)) for f in ("transformer", "transformer-aug") for w in (8, 96) for d in (1, 4)],
    *[("gatr", _gatr(mv, d)) for mv in (1, 3, 24) for d in (1, 4)],
    # the fixed-head families: the same counts whatever the heads (the attention's FLOPs are split, not added)
    *[(f, _transformer(w, 2)) for f in ("transformer-2h", "transformer-aug-2h") for w in (10, 66)],
    *[("gatr-2h", _gatr(mv, 2)) for mv in (2, 16)],
    # the 1-head families where the width rule would give more heads
    *[(f, _transformer(w, 2)) for f in ("transformer-1h", "transformer-aug-1h") for w in (11, 66)],
    *[("gatr-1h", _gatr(mv, 2)) for mv in (3, 16)],
]
META_CASES = [
    *[(f, _transformer(w, d)) for f in ("transformer", "transformer-aug") for w in (4096, 16384) for d in (1, 4)],
    *[("gatr", _gatr(mv, d)) for mv in (512, 4096) for d in (1, 4)],
]


def _batch(scenes, *, bodies=4, markers=4, props=8, device="cpu"):
    g = torch.Generator().manual_seed(0)
    pos0 = torch.randn(scenes, bodies, markers, 3, generator=g)
    tensors = (pos0, torch.randn(pos0.shape, generator=g), torch.rand(scenes, bodies, props, generator=g),
               torch.randn(pos0.shape, generator=g))
    return tuple(t.to(device) for t in tensors)


def _count(family, shape, batch, *, backward, device="cpu", bodies=4):
    """FLOPs FlopCounterMode counts for one forward (+ MSE loss, backward and Adam step) on `batch` scenes."""
    torch.manual_seed(0)
    with torch.device(device):
        model = build_model(family, **shape)
    pos0, vel0, props, target = _batch(batch, bodies=bodies, device=device)
    opt = torch.optim.Adam(model.parameters(), lr=1e-4) if device == "cpu" else None
    # The fused CPU attention kernel counts as 0 FLOPs; the math kernel is counted exactly.
    with sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter:
        loss = (model(pos0, vel0, props) - target).square().mean()
        if backward:
            loss.backward()
            if opt is not None:
                opt.step()
    return counter.get_total_flops()


@pytest.mark.parametrize("family, shape", CPU_CASES)
@pytest.mark.parametrize("batch", [1, 7])
def test_training_step_count_is_exact_on_cpu(family, shape, batch):
    counted = _count(family, shape, batch, backward=True)
    analytic = step_flops(family, batch_size=batch, **shape)
    assert abs(counted / analytic - 1) <= 0.01
    assert counted == analytic


@pytest.mark.parametrize("family, shape", META_CASES)
@pytest.mark.parametrize("batch", [2, 256])
def test_training_step_count_is_exact_at_the_largest_shapes(family, shape, batch):
    counted = _count(family, shape, batch, backward=True, device="meta")
    analytic = step_flops(family, batch_size=batch, **shape)
    assert abs(counted / analytic - 1) <= 0.01
    assert counted == analytic


@pytest.mark.parametrize("family, shape", [("transformer", _transformer(64, 2)), ("gatr", _gatr(8, 2))])
def test_meta_device_counts_like_the_cpu(family, shape):
    assert _count(family, shape, 3, backward=True, device="meta") == _count(family, shape, 3, backward=True)


@pytest.mark.parametrize("family, shape", CPU_CASES[::3] + META_CASES[::3])
def test_forward_count_is_exact(family, shape):
    device = "meta" if (family, shape) in META_CASES else "cpu"
    counted = _count(family, shape, 6, backward=False, device=device, bodies=5)
    assert counted == 6 * forward_flops(family, bodies=5, **shape)


@pytest.mark.parametrize("family, shape", [CPU_CASES[0], CPU_CASES[-1], ("gatr", _gatr(1, 1))])
def test_budget_units_agree(family, shape):
    per_sample = sample_training_flops(family, **shape)
    assert step_flops(family, batch_size=32, **shape) == 32 * per_sample
    assert training_flops(family, samples=10 * 32, batch_size=32, **shape) == 10 * step_flops(family, batch_size=32, **shape)
    assert training_flops(family, samples=100, **shape) == 100 * per_sample
    nominal = nominal_training_flops(family, samples=100, **shape)
    assert nominal == 300 * forward_flops(family, **shape)
    # the nominal count includes the first layer's input gradient, which never runs
    assert nominal > training_flops(family, samples=100, **shape)


def test_step_flops_rejects_an_empty_batch():
    with pytest.raises(ValueError, match="batch_size"):
        step_flops("transformer", batch_size=0, width=32, depth=1)


@pytest.mark.parametrize("family, shape", CPU_CASES)
def test_param_count_matches_module(family, shape):
    model = build_model(family, **shape)
    assert param_count(family, **shape) == sum(p.numel() for p in model.parameters() if p.requires_grad)


@pytest.mark.parametrize("family", ["transformer", "transformer-aug", "gatr"])
def test_counts_grow_with_shape(family):
    fam = get_family(family)
    small = dict(fam.default_shape)
    big = {k: 2 * v for k, v in small.items()}
    assert forward_flops(family, **big) > forward_flops(family, **small)
    assert param_count(family, **big) > param_count(family, **small)
    assert forward_flops(family, bodies=8, **small) > forward_flops(family, bodies=4, **small)
