import pytest
import torch

from study.benchmark.format import MARKERS, PROPS
from study.errors import ConfigError
from study.flops import param_count
from study.models import build_model, equivariance_error
from study.models.transformer import build as build_transformer


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


def _reference_transformer(model, pos0, vel0, props):
    """The transformer written out: per-head softmax(q kᵀ / sqrt(d)) v, pre-norm residual blocks."""
    b, k, m, _ = pos0.shape
    x = model.embed(torch.cat([pos0.reshape(b, k, -1), vel0.reshape(b, k, -1), props], dim=-1))
    for blk in model.blocks:
        w, h = x.shape[-1], blk.heads
        d = w // h
        q, key, v = blk.qkv(torch.nn.functional.layer_norm(x, (w,), blk.norm1.weight, blk.norm1.bias)).split(w, -1)
        heads = []
        for i in range(h):
            sl = slice(i * d, (i + 1) * d)
            att = torch.softmax(q[..., sl] @ key[..., sl].transpose(-1, -2) / d ** 0.5, dim=-1)   # (B, K, K)
            heads.append(att @ v[..., sl])
        x = x + blk.proj(torch.cat(heads, dim=-1))
        hidden = blk.fc1(torch.nn.functional.layer_norm(x, (w,), blk.norm2.weight, blk.norm2.bias))
        x = x + blk.fc2(torch.nn.functional.gelu(hidden))
    return pos0 + model.head(model.norm(x)).view(b, k, m, 3)


def test_values_match_a_written_out_transformer(batch64):
    torch.manual_seed(1)
    model = build_model("transformer", width=64, depth=2).double()
    with torch.no_grad():
        for p in model.parameters():   # LayerNorm affine and biases away from their 1/0 init
            if p.ndim == 1:
                p.normal_(1.0, 0.3)
        torch.testing.assert_close(model(*batch64), _reference_transformer(model, *batch64),
                                   rtol=1e-10, atol=1e-10)


def test_a_fixed_head_count_overrides_the_rule_and_matches_the_written_out_transformer(batch64):
    """`heads` (the head-count probe's option): 2 heads at width 20, where the rule gives 1; same parameters and
    FLOPs, another attention, and the same values as the transformer written out with 2 heads."""
    torch.manual_seed(2)
    model = build_transformer(width=20, depth=2, markers=MARKERS, props=PROPS, heads=2).double()
    assert [blk.heads for blk in model.blocks] == [2, 2]
    assert sum(p.numel() for p in model.parameters()) == param_count("transformer", width=20, depth=2)
    with torch.no_grad():
        torch.testing.assert_close(model(*batch64), _reference_transformer(model, *batch64), rtol=1e-10, atol=1e-10)
    with pytest.raises(ConfigError, match="heads must be >= 1 and divide width 20, got 3"):
        build_transformer(width=20, depth=1, markers=MARKERS, props=PROPS, heads=3)
