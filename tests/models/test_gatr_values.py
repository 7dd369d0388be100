"""GATr's layers compute the right values: each against a slow re-computation from its equations
(tests/models/reference.py), not against its own output or its symmetry alone. The linear map and the MLP are
checked on both of their paths: the in-place kernels of eager mode and the out-of-place forms torch.compile traces."""

import pytest
import torch

from study.models import build_model
from study.models.gatr.layers import Attention, Block, EquiLinear, GeometricMLP, equi_layer_norm
from tests.models import reference

GEN = lambda seed: torch.Generator().manual_seed(seed)  # noqa: E731


def _close(actual, expected):
    torch.testing.assert_close(actual, expected, rtol=1e-10, atol=1e-10)


def _inputs(b=2, k=3, c=4, s=6, *, seed=0, scale=0.7):
    """Random multivectors (B, K, C, 16) with every component live (points, directions, e0 parts),
    scalars (B, K, S) and a join reference (B, 1, 1, 16)."""
    g = GEN(seed)
    x = scale * torch.randn(b, k, c, 16, generator=g, dtype=torch.float64)
    sc = torch.randn(b, k, s, generator=g, dtype=torch.float64)
    ref = torch.randn(b, 1, 1, 16, generator=g, dtype=torch.float64)
    return x, sc, ref


@pytest.fixture(params=["kernel", "traced"])
def path(request, monkeypatch):
    """"traced": the layers take the path they take while torch.compile traces them, here in eager mode."""
    if request.param == "traced":
        monkeypatch.setattr(torch.compiler, "is_compiling", lambda: True)
    return request.param


@pytest.mark.parametrize("in_s, grade0", [(6, True), (0, True), (6, False)])
def test_equi_linear_is_the_nine_map_basis_sum(path, in_s, grade0):
    torch.manual_seed(0)
    x, s, _ = _inputs()
    layer = EquiLinear(4, 5, in_s, 3 if grade0 else 0, grade0=grade0).double()
    if grade0:  # random biases: their zero init would hide a bias landing in the wrong place
        torch.nn.init.normal_(layer.scalar.bias)
    s_in = s[..., :in_s] if in_s else None
    with torch.no_grad():
        y, ys = layer(x, s_in)
    y_ref, ys_ref = reference.linear(layer, x, s_in)
    _close(y, y_ref)
    if grade0:
        _close(ys, ys_ref)


def test_layer_norm():
    x, s, _ = _inputs(seed=1)
    for actual, expected in zip(equi_layer_norm(x, s), reference.layer_norm(x, s)):
        _close(actual, expected)


@pytest.mark.parametrize("heads", [1, 2])
def test_attention_matches_a_per_token_loop(heads):
    torch.manual_seed(2)
    x, s, _ = _inputs(c=4, s=6, seed=2)
    layer = Attention(4, 6, heads).double()
    with torch.no_grad():
        y, ys = layer(x, s)
    y_ref, ys_ref = reference.attention(layer, x, s)
    _close(y, y_ref)
    _close(ys, ys_ref)


def test_attention_distance_term_is_live():
    """Without the distance term the reference would differ: the test above can see it."""
    torch.manual_seed(3)
    x, s, _ = _inputs(seed=3)
    layer = Attention(4, 6, 1).double()
    qkv, qkv_s = reference.linear(layer.qkv, x, s)
    q, k, v = qkv.split(4, dim=-2)
    qs, ks, vs = qkv_s.split(6, dim=-1)
    full, _ = reference.attention_core(q, k, v, qs, ks, vs, 1)
    q_blind = q.clone()
    q_blind[..., 14] = 0.0   # e123 of the queries: kills w_q, so only ‖w_k v_q‖² remains
    blind, _ = reference.attention_core(q_blind, k, v, qs, ks, vs, 1)
    assert (full - blind).abs().max() > 1e-3


def test_mlp_matches_table_products(path):
    """The MLP's first layer writes component-major and its last reads it: both layouts of the linear map."""
    torch.manual_seed(4)
    x, s, ref = _inputs(seed=4)
    layer = GeometricMLP(4, 6).double()
    for p in layer.parameters():   # random biases: a bias in the wrong place must show
        torch.nn.init.normal_(p, std=0.5) if p.ndim == 1 else None
    with torch.no_grad():
        y, ys = layer(x, s, ref)
    y_ref, ys_ref = reference.mlp(layer, x, s, ref)
    _close(y, y_ref)
    _close(ys, ys_ref)


def test_block():
    torch.manual_seed(5)
    x, s, ref = _inputs(c=8, s=8, seed=5)
    layer = Block(8, 8, 1).double()
    with torch.no_grad():
        y, ys = layer(x, s, ref)
    y_ref, ys_ref = reference.block(layer, x, s, ref)
    _close(y, y_ref)
    _close(ys, ys_ref)


def test_whole_network(batch64):
    torch.manual_seed(6)
    model = build_model("gatr", mv_channels=8, s_channels=16, depth=2).double()
    for p in model.parameters():   # no zero biases, so every path carries a value
        torch.nn.init.normal_(p, std=0.3) if p.ndim == 1 else None
    with torch.no_grad():
        out = model(*batch64)
    _close(out, reference.gatr(model, *batch64))
