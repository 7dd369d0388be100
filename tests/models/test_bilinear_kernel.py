"""The MLP's bilinear kernel, on both of its paths (term by term, and gathered for small tensors): values
against a dense contraction with the 16×16×16 table, and gradients against finite differences."""

from __future__ import annotations

import pytest
import torch

from study.benchmark.format import PROPS
from study.models.gatr.layers import bilinear_kernel
from study.models.gatr.layers.bilinear_kernel import accumulate, gated_bilinear
from study.models.gatr.primitives import bilinear_terms
from study.models.gatr.primitives.tables import table

PATHS = {"term-by-term": 0, "gathered": 1 << 40}


@pytest.fixture(params=sorted(PATHS))
def path(request, monkeypatch):
    monkeypatch.setattr(bilinear_kernel, "SMALL_SLAB", PATHS[request.param])
    return request.param


@pytest.mark.parametrize("name", ["gp", "join"])
def test_accumulate_is_the_dense_table_contraction(path, name):
    torch.manual_seed(1)
    a, b = torch.randn(16, 3, 7, dtype=torch.float64), torch.randn(16, 3, 7, dtype=torch.float64)
    out = torch.full((16, 3, 7), float("nan"), dtype=torch.float64)          # stale contents must not leak in
    accumulate(out, bilinear_terms(name), a, b)
    torch.testing.assert_close(out, torch.einsum("ijk,jcn,kcn->icn", table(name), a, b))


def test_gated_bilinear_gradients(path):
    torch.manual_seed(2)
    channels, tokens = 2, 5
    h = torch.randn(16, 4 * channels, tokens, dtype=torch.float64, requires_grad=True)
    ref = torch.randn(1, 1, tokens, dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda x: gated_bilinear(x, ref, channels), (h,))


def test_both_paths_give_one_model_output(monkeypatch):
    """The path is a speed choice only: a GATr step gives the same output and gradients either way."""
    from study.models import build_model

    outputs = []
    for slab in PATHS.values():
        monkeypatch.setattr(bilinear_kernel, "SMALL_SLAB", slab)
        torch.manual_seed(3)
        model = build_model("gatr", mv_channels=3, s_channels=6, depth=2).double()
        torch.manual_seed(4)
        pos0, vel0 = torch.randn(4, 3, 4, 3, dtype=torch.float64), torch.randn(4, 3, 4, 3, dtype=torch.float64)
        props = torch.randn(4, 3, PROPS, dtype=torch.float64)
        y = model(pos0, vel0, props)
        y.square().mean().backward()
        outputs.append((y.detach(), [p.grad for p in model.parameters()]))
    (y0, g0), (y1, g1) = outputs
    torch.testing.assert_close(y0, y1)
    for a, b in zip(g0, g1):
        torch.testing.assert_close(a, b)
