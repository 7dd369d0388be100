"""GATr's hand-written backward passes agree with finite differences (torch.autograd.gradcheck,
float64) for the inputs and the parameters."""

import pytest
import torch
from torch.func import functional_call

from study.models.gatr.layers import EquiLinear, GeometricMLP


def _gradcheck_module(module, inputs):
    """gradcheck of module(*inputs) with respect to inputs and every parameter."""
    names = [n for n, _ in module.named_parameters()]
    params = [p.detach().clone().requires_grad_(True) for p in module.parameters()]

    def f(*args):
        outs = functional_call(module, dict(zip(names, args[len(inputs):])), tuple(args[: len(inputs)]))
        return tuple(o for o in (outs if isinstance(outs, tuple) else (outs,)) if o is not None)

    assert torch.autograd.gradcheck(f, (*inputs, *params))


@pytest.mark.parametrize("in_layout", ["channel", "component"])
@pytest.mark.parametrize("out_layout", ["channel", "component"])
@pytest.mark.parametrize("in_s", [0, 3])
def test_equi_linear_gradients(in_layout, out_layout, in_s):
    torch.manual_seed(0)
    layer = EquiLinear(3, 2, in_s, 4, in_layout=in_layout, out_layout=out_layout).double()
    x = torch.randn(*((5, 3, 16) if in_layout == "channel" else (16, 3, 5)), dtype=torch.float64,
                    requires_grad=True)
    s = torch.randn(5, in_s, dtype=torch.float64, requires_grad=True) if in_s else None
    _gradcheck_module(layer if in_s else _NoScalars(layer), (x, s) if in_s else (x,))


class _NoScalars(torch.nn.Module):
    def __init__(self, layer):
        super().__init__()
        self.layer = layer

    def forward(self, x):
        return self.layer(x, None)


def test_geometric_mlp_gradients():
    torch.manual_seed(0)
    mlp = GeometricMLP(2, 3).double()
    x = torch.randn(2, 3, 2, 16, dtype=torch.float64, requires_grad=True)
    s = torch.randn(2, 3, 3, dtype=torch.float64, requires_grad=True)
    reference = torch.randn(2, 1, 1, 16, dtype=torch.float64)
    _gradcheck_module(_WithReference(mlp, reference), (x, s))


class _WithReference(torch.nn.Module):
    def __init__(self, mlp, reference):
        super().__init__()
        self.mlp, self.reference = mlp, reference

    def forward(self, x, s):
        return self.mlp(x, s, self.reference)
