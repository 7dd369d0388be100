"""GATr: every layer and the whole network are exactly E(3)-equivariant (rotations, reflections,
translations) on benchmark batches; the network is not trivially so (it uses its inputs)."""

import pytest
import torch

from study.benchmark.transforms import random_e3, transform_batch
from study.models import build_model, equivariance_error
from study.benchmark.format import MARKERS, PROPS
from study.errors import ConfigError
from study.models.gatr import GATr, build as gatr_family_build
from study.models.gatr import primitives as pga
from study.models.gatr.layers import Attention, Block, EquiLinear, GeometricMLP, equi_layer_norm
from study.models.gatr.nets import chirality, embed_scene, join_reference, predicted_positions
from tests.models.versors import act, versors

TOL = {torch.float64: 1e-10, torch.float32: 1e-4}
DTYPES = [torch.float64, torch.float32]


def _rel(a, b):
    return float(torch.linalg.vector_norm(a.double() - b.double()) / torch.linalg.vector_norm(b.double()))


@pytest.fixture(scope="module")
def hidden(batch64):
    """Hidden multivectors/scalars of a real batch (B, K, C, 16), (B, K, S), the join reference and
    a random E(3) element per scene as a versor."""
    torch.manual_seed(0)
    model = build_model("gatr", mv_channels=8, s_channels=16, depth=1).double()
    pos0, vel0, props = batch64
    x = embed_scene(pos0, vel0, chirality(pos0))
    reference = join_reference(x)
    with torch.no_grad():
        h, s = model.embed(x, props)
    R, t = random_e3(pos0.shape[0], generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    u, odd = versors(R, t)
    assert odd.any() and (~odd).any()  # both rotations and reflections in the batch
    return h, s, reference, u[:, None, None], odd


def _check_layer(layer, hidden, dtype, *, with_reference=False):
    h, s, ref, u, odd = hidden
    g = lambda x: act(u, x.double(), odd)  # noqa: E731
    layer = layer.to(dtype) if isinstance(layer, torch.nn.Module) else layer
    extra = (ref.to(dtype),) if with_reference else ()
    gextra = (g(ref).to(dtype),) if with_reference else ()
    with torch.no_grad():
        y, ys = layer(h.to(dtype), s.to(dtype), *extra)
        gy, gys = layer(g(h).to(dtype), s.to(dtype), *gextra)
    assert _rel(gy, g(y)) <= TOL[dtype]
    assert _rel(gys, ys) <= TOL[dtype]   # scalars are invariant
    assert _rel(y, g(y)) > 1e-2          # ... and the check can fail: g acts non-trivially


@pytest.mark.parametrize("dtype", DTYPES)
def test_equi_linear(hidden, dtype):
    torch.manual_seed(1)
    _check_layer(EquiLinear(8, 6, 16, 5), hidden, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_layer_norm(hidden, dtype):
    _check_layer(lambda x, s: equi_layer_norm(x, s), hidden, dtype)


class _Bilinear(torch.nn.Module):
    """The MLP's bilinear + gated GELU step alone (without the output linear)."""

    def __init__(self, mlp):
        super().__init__()
        self.mlp = mlp

    def forward(self, x, s, reference):
        y, ys = self.mlp.hidden(x, s, reference)     # (16, 2C, B, K) component-major
        return y.permute(2, 3, 1, 0), ys            # (B, K, 2C, 16)


@pytest.mark.parametrize("dtype", DTYPES)
def test_bilinear_and_gated_gelu(hidden, dtype):
    torch.manual_seed(2)
    _check_layer(_Bilinear(GeometricMLP(8, 16)), hidden, dtype, with_reference=True)


@pytest.mark.parametrize("dtype", DTYPES)
def test_mlp(hidden, dtype):
    torch.manual_seed(3)
    _check_layer(GeometricMLP(8, 16), hidden, dtype, with_reference=True)


@pytest.mark.parametrize("dtype", DTYPES)
def test_attention(hidden, dtype):
    torch.manual_seed(4)
    _check_layer(Attention(8, 16, heads=2), hidden, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_attention_with_normalised_distance(hidden, dtype):
    torch.manual_seed(4)
    _check_layer(Attention(8, 16, heads=2, normalise_distance=True), hidden, dtype)


def test_whole_model_with_normalised_distance(batch64):
    torch.manual_seed(6)
    model = GATr(mv_channels=8, s_channels=16, depth=2, markers=MARKERS, props=PROPS, normalise_distance=True).double()
    err = equivariance_error(model, *batch64, generator=torch.Generator().manual_seed(7), reflection_prob=0.5)
    assert err <= TOL[torch.float64]
    torch.manual_seed(6)
    plain = GATr(mv_channels=8, s_channels=16, depth=2, markers=MARKERS, props=PROPS).double()
    with torch.no_grad():   # same weights, another attention: the option changes what the network computes
        assert _rel(model(*batch64), plain(*batch64)) > 1e-6


def test_whole_model_with_a_fixed_head_count(batch64):
    """`heads` (the head-count probe's option): 2 heads at 2 multivector channels, where the rule gives 1; still
    equivariant, the same parameters, another attention; a head count that does not divide is refused."""
    torch.manual_seed(6)
    model = GATr(mv_channels=2, s_channels=4, depth=2, markers=MARKERS, props=PROPS, heads=2).double()
    assert [blk.attention.heads for blk in model.blocks] == [2, 2]
    err = equivariance_error(model, *batch64, generator=torch.Generator().manual_seed(7), reflection_prob=0.5)
    assert err <= TOL[torch.float64]
    torch.manual_seed(6)
    plain = GATr(mv_channels=2, s_channels=4, depth=2, markers=MARKERS, props=PROPS).double()
    assert sum(p.numel() for p in model.parameters()) == sum(p.numel() for p in plain.parameters())
    with torch.no_grad():
        assert _rel(model(*batch64), plain(*batch64)) > 1e-6
    with pytest.raises(ConfigError, match="heads must be >= 1 and divide mv_channels 3 and s_channels 6, got 2"):
        gatr_family_build(mv_channels=3, s_channels=6, depth=1, markers=MARKERS, props=PROPS, heads=2)


def test_whole_model_with_a_learned_distance_gain(batch64):
    """`distance_gain` (the plateau probe's option): one parameter per head and block, exp(g) on the distance keys;
    at g = 0 the network computes what it computes without it, at g != 0 something else, equivariantly."""
    torch.manual_seed(6)
    model = GATr(mv_channels=8, s_channels=16, depth=2, markers=MARKERS, props=PROPS, distance_gain=True).double()
    torch.manual_seed(6)
    plain = GATr(mv_channels=8, s_channels=16, depth=2, markers=MARKERS, props=PROPS).double()
    assert [tuple(blk.attention.distance_gain.shape) for blk in model.blocks] == [(1,), (1,)]
    with torch.no_grad():
        assert _rel(model(*batch64), plain(*batch64)) < 1e-12
        for blk in model.blocks:
            blk.attention.distance_gain.fill_(1.5)
        assert _rel(model(*batch64), plain(*batch64)) > 1e-6
    err = equivariance_error(model, *batch64, generator=torch.Generator().manual_seed(7), reflection_prob=0.5)
    assert err <= TOL[torch.float64]


def test_a_zero_head_predicts_no_displacement_at_the_start_and_still_learns(batch64):
    torch.manual_seed(6)
    model = GATr(mv_channels=3, s_channels=6, depth=2, markers=MARKERS, props=PROPS, zero_head=True).double()
    pos0, vel0, props = batch64
    out = model(pos0, vel0, props)
    assert torch.equal(out, pos0)
    out.square().sum().backward()
    assert model.head.weight.grad.abs().sum() > 0   # the head learns first; the layers below it from its next step


def test_init_scale_scales_the_multivector_weights_of_every_equilinear_alone():
    torch.manual_seed(6)
    half = GATr(mv_channels=3, s_channels=6, depth=2, markers=MARKERS, props=PROPS, init_scale=0.5)
    torch.manual_seed(6)
    plain = GATr(mv_channels=3, s_channels=6, depth=2, markers=MARKERS, props=PROPS)
    layers = 0
    for (name, p), (_, q) in zip(half.named_parameters(), plain.named_parameters(), strict=True):
        expected = 0.5 * q if name.endswith(".weight") and "scalar" not in name else q
        assert torch.equal(p, expected), name
        layers += name.endswith(".weight") and "scalar" not in name
    assert layers == 1 + 4 * 2 + 1   # embed, per block qkv, proj, MLP in and out, head


def test_velocity_scale_is_a_change_of_the_velocities_units_and_keeps_the_network_equivariant(batch64):
    """GATr(velocity_scale=s) on (pos0, vel0) computes what the same network computes on (pos0, s·vel0), and
    nothing else; it stays exactly equivariant (velocities are directions, scaling commutes with E(3))."""
    pos0, vel0, props = batch64
    torch.manual_seed(6)
    scaled = GATr(mv_channels=3, s_channels=6, depth=2, markers=MARKERS, props=PROPS, velocity_scale=0.25).double()
    torch.manual_seed(6)
    plain = GATr(mv_channels=3, s_channels=6, depth=2, markers=MARKERS, props=PROPS).double()
    with torch.no_grad():
        assert _rel(scaled(pos0, vel0, props), plain(pos0, 0.25 * vel0, props)) < 1e-14
        assert _rel(scaled(pos0, vel0, props), plain(pos0, vel0, props)) > 1e-3
    err = equivariance_error(scaled, *batch64, generator=torch.Generator().manual_seed(7), reflection_prob=0.5)
    assert err <= TOL[torch.float64]


@pytest.mark.parametrize("dtype", DTYPES)
def test_block(hidden, dtype):
    torch.manual_seed(5)
    _check_layer(Block(8, 16, heads=1), hidden, dtype, with_reference=True)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reflection_prob", [0.0, 0.5, 1.0])
def test_whole_model(batch64, dtype, reflection_prob):
    torch.manual_seed(6)
    model = build_model("gatr", mv_channels=16, s_channels=16, depth=2).to(dtype)
    batch = tuple(x.to(dtype) for x in batch64)
    err = equivariance_error(model, *batch, generator=torch.Generator().manual_seed(7),
                             reflection_prob=reflection_prob)
    assert err <= TOL[dtype]


def test_model_uses_its_inputs(batch64):
    torch.manual_seed(8)
    model = build_model("gatr", mv_channels=8, s_channels=16, depth=1).double()
    pos0, vel0, props = batch64
    with torch.no_grad():
        out = model(pos0, vel0, props)
        assert _rel(out, pos0) > 1e-3
        assert _rel(model(pos0, 2 * vel0, props), out) > 1e-4
        assert _rel(model(pos0, vel0, props + 1), out) > 1e-4
        # bodies interact through attention: moving body 0 changes body 1's prediction
        moved = pos0.clone()
        moved[:, 0] += 0.3
        assert _rel(model(moved, vel0, props)[:, 1], out[:, 1]) > 1e-6


def test_chirality_flips_under_reflection(batch64):
    pos0, vel0, props = batch64
    R, t = random_e3(pos0.shape[0], generator=torch.Generator().manual_seed(9), dtype=torch.float64)
    gpos, *_ = transform_batch(R, t, pos0, vel0, props)
    det = torch.linalg.det(R).view(-1, 1)
    assert torch.equal(chirality(gpos), det.sign() * chirality(pos0))


def test_gradients_flow_to_every_parameter(batch64):
    torch.manual_seed(10)
    model = build_model("gatr", mv_channels=8, s_channels=16, depth=2).double()
    model(*batch64).square().mean().backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_zero_branches_start_every_block_as_the_identity(batch64):
    """`zero_branches`: each block returns its input exactly at initialisation (the network equals
    embed -> norm -> head), and one optimiser step on a regression loss makes every block act on the
    multivectors (the scalar outputs need a second step: nothing downstream of them is active yet)."""
    torch.manual_seed(11)
    model = GATr(mv_channels=8, s_channels=16, depth=2, markers=MARKERS, props=PROPS, zero_branches=True).double()
    pos0, vel0, props = batch64
    x = embed_scene(pos0, vel0, chirality(pos0))
    reference = join_reference(x)
    h, s = model.embed(x, props)
    with torch.no_grad():
        for block in model.blocks:
            bh, bs = block(h, s, reference)
            assert torch.equal(bh, h) and torch.equal(bs, s)
        y, _ = model.head(*equi_layer_norm(h, s))
        assert torch.equal(model(pos0, vel0, props), predicted_positions(y, pos0, chirality(pos0)))
    optimiser = torch.optim.SGD(model.parameters(), lr=0.1)
    (model(pos0, vel0, props) - pos0 - 0.3 * vel0).square().mean().backward()
    optimiser.step()
    with torch.no_grad():
        h, s = model.embed(x, props)
        for block in model.blocks:
            bh, _ = block(h, s, reference)
            assert _rel(bh, h) > 1e-6


def test_distance_features_give_minus_squared_distance_of_weighted_points():
    """q·k of the distance features = −w_q² w_k² ‖p_q − p_k‖² for points embedded with weights w."""
    g = torch.Generator().manual_seed(3)
    p_q, p_k = torch.randn(50, 3, generator=g, dtype=torch.float64), torch.randn(50, 3, generator=g, dtype=torch.float64)
    w_q, w_k = torch.rand(50, 1, generator=g, dtype=torch.float64) + 0.5, torch.rand(50, 1, generator=g, dtype=torch.float64) + 0.5
    x_q = w_q * pga.embed_point(p_q) + torch.randn(50, 16, generator=g, dtype=torch.float64) * _non_trivector_mask()
    x_k = w_k * pga.embed_point(p_k)
    fq, fk = pga.distance_query(x_q), pga.distance_key(x_k)
    expected = -(w_q * w_k).squeeze(-1) ** 2 * ((p_q - p_k) ** 2).sum(-1)
    torch.testing.assert_close((fq * fk).sum(-1), expected, rtol=1e-12, atol=1e-12)


def test_normalised_distance_features_forget_the_weights_up_to_epsilon():
    """With `normalise`, q·k = −ŵ_q² ŵ_k² ‖p_q − p_k‖² where ŵ = w² / (w² + 1e-3): for weights of order one the
    squared distance of the points themselves, whatever their weights (the official GATr's normaliser)."""
    g = torch.Generator().manual_seed(4)
    p_q, p_k = torch.randn(50, 3, generator=g, dtype=torch.float64), torch.randn(50, 3, generator=g, dtype=torch.float64)
    w_q = torch.rand(50, 1, generator=g, dtype=torch.float64) * 4 - 2    # both signs, some near 0
    w_k = torch.rand(50, 1, generator=g, dtype=torch.float64) * 4 - 2
    x_q = w_q * pga.embed_point(p_q) + torch.randn(50, 16, generator=g, dtype=torch.float64) * _non_trivector_mask()
    x_k = w_k * pga.embed_point(p_k)
    fq, fk = pga.distance_query(x_q, normalise=True), pga.distance_key(x_k, normalise=True)
    hat = lambda w: (w * w / (w * w + 1e-3)).squeeze(-1)   # noqa: E731
    expected = -(hat(w_q) * hat(w_k)) ** 2 * ((p_q - p_k) ** 2).sum(-1)
    torch.testing.assert_close((fq * fk).sum(-1), expected, rtol=1e-10, atol=1e-12)
    far = w_q.abs().squeeze(-1) > 0.5
    far &= w_k.abs().squeeze(-1) > 0.5
    torch.testing.assert_close((fq * fk).sum(-1)[far], -((p_q - p_k) ** 2).sum(-1)[far], rtol=2e-2, atol=0)


def _non_trivector_mask() -> torch.Tensor:
    """1 on every component except the four trivector ones (they must not affect the distance)."""
    mask = torch.ones(16, dtype=torch.float64)
    mask[[pga.E012, pga.E013, pga.E023, pga.E123]] = 0.0
    return mask
