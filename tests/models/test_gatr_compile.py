"""GATr under torch.compile: the out-of-place forms the compiler traces in place of the in-place autograd Functions
(`equi_linear_traced`, `gated_bilinear_traced`) compute the layers' equations (tests/models/reference.py), and a
compiled GATr traces as one graph whose outputs and gradients are eager's."""

import pytest
import torch

from study.models import build_model
from study.models.gatr.layers import EquiLinear, GeometricMLP
from tests.models import reference


def _close(actual, expected):
    torch.testing.assert_close(actual, expected, rtol=1e-10, atol=1e-10)


@pytest.fixture
def traced(monkeypatch):
    """The layers take the path they take while torch.compile traces them, here in eager mode."""
    monkeypatch.setattr(torch.compiler, "is_compiling", lambda: True)


def _inputs(seed: int, b=2, k=3, c=4, s=6):
    g = torch.Generator().manual_seed(seed)
    return (0.7 * torch.randn(b, k, c, 16, generator=g, dtype=torch.float64),
            torch.randn(b, k, s, generator=g, dtype=torch.float64),
            torch.randn(b, 1, 1, 16, generator=g, dtype=torch.float64))


@pytest.mark.parametrize("in_s", [6, 0])
def test_traced_equi_linear_is_the_nine_map_basis_sum(traced, in_s):
    x, s, _ = _inputs(seed=0)
    layer = EquiLinear(4, 5, in_s, 3).double()
    torch.nn.init.normal_(layer.scalar.bias)   # a bias in the wrong place must show
    s_in = s[..., :in_s] if in_s else None
    with torch.no_grad():
        y, ys = layer(x, s_in)
    y_ref, ys_ref = reference.linear(layer, x, s_in)
    _close(y, y_ref)
    _close(ys, ys_ref)


def test_traced_mlp_is_the_table_products(traced):
    """The MLP's first layer writes component-major and its last reads it: both layouts of the traced linear."""
    x, s, ref = _inputs(seed=1)
    layer = GeometricMLP(4, 6).double()
    for p in layer.parameters():
        torch.nn.init.normal_(p, std=0.5) if p.ndim == 1 else None
    with torch.no_grad():
        y, ys = layer(x, s, ref)
    y_ref, ys_ref = reference.mlp(layer, x, s, ref)
    _close(y, y_ref)
    _close(ys, ys_ref)


def test_compiled_gatr_is_one_graph_with_eager_values_and_gradients(batch64):
    """fullgraph: no graph break anywhere in the network (a break inside the kernels' Functions is where AOT
    autograd's alias replay failed); aot_eager traces forward and backward as inductor does, without codegen."""
    torch.manual_seed(7)
    model = build_model("gatr", mv_channels=2, s_channels=4, depth=1).double()
    inputs = tuple(x[:4] for x in batch64)
    compiled = torch.compile(model, backend="aot_eager", fullgraph=True)
    y = compiled(*inputs)
    y.square().mean().backward()
    grads = [p.grad.clone() for p in model.parameters()]
    model.zero_grad(set_to_none=True)
    y_eager = model(*inputs)
    y_eager.square().mean().backward()
    _close(y, y_eager)
    for name, (g, p) in zip([n for n, _ in model.named_parameters()], zip(grads, model.parameters())):
        torch.testing.assert_close(g, p.grad, rtol=1e-9, atol=1e-12, msg=lambda m: f"{name}: {m}")
