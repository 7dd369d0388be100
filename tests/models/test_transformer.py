import torch

from study.flops import param_count
from study.models import build_model, equivariance_error


def test_forward_shape_and_params(batch32):
    pos0, vel0, props = batch32
    model = build_model("transformer", width=64, depth=2)
    out = model(pos0, vel0, props)
    assert out.shape == pos0.shape
    assert sum(p.numel() for p in model.parameters()) == param_count("transformer", width=64, depth=2)


def test_plain_transformer_is_not_equivariant(batch64):
    torch.manual_seed(0)
    model = build_model("transformer", width=64, depth=1).double()
    err = equivariance_error(model, *batch64, generator=torch.Generator().manual_seed(0))
    assert err > 1e-2


def test_heads_follow_width():
    model = build_model("transformer", width=96, depth=1)
    assert model.blocks[0].heads == 3
    assert build_model("transformer", width=16, depth=1).blocks[0].heads == 1
