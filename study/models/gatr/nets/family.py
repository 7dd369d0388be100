"""GATr as a registered family: shape parameters, validation, builder, FLOP and parameter counts.

Shape: mv_channels C, s_channels S, depth. Heads = max(1, C // 8); C and S must be divisible by it.
Executed matrix products per token, as counted (2·m·n·k each; see study/flops.py for the convention):
  EquiLinear(in→out, in_s→out_s): one dense (16·in × 16·out) product, plus one
  (in + in_s) × (out + out_s) product on [<x>_0, scalars] (none for the head, which has no grade-0
  path). Its dense weight is placed from W by indexing: no arithmetic, per step or per sample.
  Attention (per scene and head): scores over 8 + 5 features per mv channel plus the scalars, and
  the weighted sum over 16 components per mv channel plus the scalars.
  Geometric product, join, norms and gates are elementwise (192 resp. 81 fused multiply-adds per
  channel, <1% of the matmul work): they count 0.
Backward, as executed: every product costs twice its forward (input and weight gradients), except
the first EquiLinear, whose inputs (the embedded scene) need no gradient: it runs its two
weight-gradient products only, once its forward.
"""

from __future__ import annotations

from study.errors import ConfigError
from study.models.gatr.nets.gatr import GATr, heads_for

SHAPE_PARAMS = ("mv_channels", "s_channels", "depth")
DEFAULT_SHAPE = {"mv_channels": 8, "s_channels": 16, "depth": 1}
GRANULARITY = {"mv_channels": 8, "s_channels": 8, "depth": 1}  # s must also divide by the heads
MINIMUM = {"mv_channels": 1, "s_channels": 1, "depth": 1}
EQUIVARIANT = True
QK_FEATURES_PER_MV = 13   # 8 non-e0 components + 5 distance features
V_FEATURES_PER_MV = 16


def validate(*, mv_channels: int, s_channels: int, depth: int, heads: int | None = None) -> None:
    """Reject shapes the network cannot take (ConfigError naming the parameter); `heads`: see `build`."""
    if mv_channels < 1:
        raise ConfigError(f"gatr: mv_channels must be >= 1, got {mv_channels}")
    if s_channels < 1:
        raise ConfigError(f"gatr: s_channels must be >= 1, got {s_channels}")
    if depth < 1:
        raise ConfigError(f"gatr: depth must be >= 1, got {depth}")
    if heads is not None:
        if heads < 1 or mv_channels % heads or s_channels % heads:
            raise ConfigError(f"gatr: heads must be >= 1 and divide mv_channels {mv_channels} and s_channels "
                              f"{s_channels}, got {heads}")
        return
    heads = heads_for(mv_channels)
    if mv_channels % heads:
        raise ConfigError(f"gatr: mv_channels {mv_channels} is not divisible by its {heads} heads "
                          f"(heads = max(1, mv_channels // 8)); use a multiple of 8")
    if s_channels % heads:
        raise ConfigError(f"gatr: s_channels {s_channels} is not divisible by the {heads} heads of "
                          f"mv_channels {mv_channels} (heads = max(1, mv_channels // 8))")


def build(*, mv_channels: int, s_channels: int, depth: int, markers: int, props: int,
          zero_branches: bool = False, normalise_distance: bool = False, heads: int | None = None,
          distance_gain: bool = False, init_scale: float = 1.0, zero_head: bool = False,
          velocity_scale: float = 1.0) -> GATr:
    """The network for a validated shape (`zero_branches`, `normalise_distance`, `heads`, `distance_gain`,
    `init_scale`, `zero_head`, `velocity_scale`: investigation options; see GATr). FLOPs and parameters do not
    depend on the head count."""
    validate(mv_channels=mv_channels, s_channels=s_channels, depth=depth, heads=heads)
    return GATr(mv_channels=mv_channels, s_channels=s_channels, depth=depth, markers=markers, props=props,
                zero_branches=zero_branches, normalise_distance=normalise_distance, heads=heads,
                distance_gain=distance_gain, init_scale=init_scale, zero_head=zero_head,
                velocity_scale=velocity_scale)


def _linear_flops(in_mv: int, out_mv: int, in_s: int, out_s: int, grade0: bool) -> int:
    dense = 2 * (16 * in_mv) * (16 * out_mv)
    return dense + (2 * (in_mv + in_s) * (out_mv + out_s) if grade0 else 0)


def _linear_params(in_mv: int, out_mv: int, in_s: int, out_s: int, grade0: bool) -> int:
    return 8 * out_mv * in_mv + ((in_mv + in_s + 1) * (out_mv + out_s) if grade0 else 0)


def _linears(c: int, s: int, depth: int, markers: int, props: int) -> list[tuple[int, int, int, int, bool]]:
    """(in_mv, out_mv, in_s, out_s, grade0) of every EquiLinear in execution order: embed, blocks, head."""
    block = [(c, 3 * c, s, 3 * s, True), (c, c, s, s, True),            # attention qkv, proj
             (c, 4 * c, s, 2 * s, True), (2 * c, c, 2 * s, s, True)]    # MLP in, out
    return [(2 * markers, c, props, s, True)] + depth * block + [(c, markers, s, 0, False)]


def _attention_flops(c: int, s: int, bodies: int) -> int:
    """Scores and weighted sum of one attention layer over one scene (all heads)."""
    k = bodies
    return 2 * k * k * (QK_FEATURES_PER_MV * c + s) + 2 * k * k * (V_FEATURES_PER_MV * c + s)


def forward_flops(*, mv_channels: int, s_channels: int, depth: int, bodies: int, markers: int,
                  props: int) -> int:
    """Matmul FLOPs of one forward pass over one scene."""
    linears = _linears(mv_channels, s_channels, depth, markers, props)
    per_token = sum(_linear_flops(*layer) for layer in linears)
    return bodies * per_token + depth * _attention_flops(mv_channels, s_channels, bodies)


def backward_flops(*, mv_channels: int, s_channels: int, depth: int, bodies: int, markers: int,
                   props: int) -> int:
    """Matmul FLOPs of one backward pass over one scene: 2 × forward less the first layer's input gradient."""
    first = bodies * _linear_flops(*_linears(mv_channels, s_channels, depth, markers, props)[0])
    forward = forward_flops(mv_channels=mv_channels, s_channels=s_channels, depth=depth, bodies=bodies,
                            markers=markers, props=props)
    return 2 * forward - first


def param_count(*, mv_channels: int, s_channels: int, depth: int, markers: int, props: int) -> int:
    """Trainable parameters (equivariant weights, scalar weights and biases)."""
    return sum(_linear_params(*layer) for layer in _linears(mv_channels, s_channels, depth, markers, props))


def idealised_training_flops(*, mv_channels: int, s_channels: int, depth: int, bodies: int, markers: int,
                             props: int) -> int:
    """Idealised forward + backward FLOPs of one sample: equivariant maps and bilinears by their nonzero terms
    (the analysis' `--compute idealised`; defined in study/models/gatr/idealised_flops.py)."""
    from study.models.gatr.idealised_flops import idealised_training_flops as count   # it imports this module

    return count(mv_channels=mv_channels, s_channels=s_channels, depth=depth, bodies=bodies, markers=markers,
                 props=props)
