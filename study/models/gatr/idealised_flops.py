"""GATr's idealised FLOP count: its equivariant maps and geometric-algebra bilinears counted by their nonzero terms.

The executed count (nets/family.py, the budget) charges each EquiLinear the dense (16·in × 16·out) product it
runs, 2·256·in·out FLOPs per token for the multivector part, and the MLP's geometric product and join 0 (an
elementwise kernel). The idealised count is the structured cost an efficient kernel would pay:

- EquiLinear (in → out multivector channels): 2·nnz·in·out per token, nnz = the nonzero entries of the basis
  maps its dense product holds (the 8 maps other than <x>_0: 4 + 6 + 4 + 1 + 1 + 3 + 3 + 1 = 23), instead of
  2·256·in·out; its (in + in_s) × (out + out_s) product on [<x>_0, scalars] counts as executed;
- the MLP's bilinears on C channels: 2·(192 + 81)·C per token (the geometric product's and the join's
  nonzero table entries, one multiply-add each), instead of 0;
- attention (scores over 13 features per channel, weighted sums over 16) counts as executed.

The backward pass is counted as the executed one is: every product twice its forward (both factors' or
input and weight gradients), except the first EquiLinear, which computes no input gradient (once its forward).
The nonzero counts are read from the generated tables (`primitives.tables`), not typed in.
"""

from __future__ import annotations

from functools import lru_cache

import torch

from study.models.gatr.nets.family import _attention_flops, _linears
from study.models.gatr.primitives import linear_basis, table


@lru_cache(maxsize=None)
def nonzeros() -> dict[str, int]:
    """Nonzero terms: `dense` (the 8 basis maps an EquiLinear's dense product holds), `gp`, `join`."""
    basis = linear_basis()
    return {"dense": int(torch.count_nonzero(basis[1:])), "gp": int(torch.count_nonzero(table("gp"))),
            "join": int(torch.count_nonzero(table("join")))}


def _linear(in_mv: int, out_mv: int, in_s: int, out_s: int, grade0: bool) -> int:
    return 2 * nonzeros()["dense"] * in_mv * out_mv + (2 * (in_mv + in_s) * (out_mv + out_s) if grade0 else 0)


def idealised_forward_flops(*, mv_channels: int, s_channels: int, depth: int, bodies: int, markers: int,
                            props: int) -> int:
    """Idealised forward FLOPs of one scene (see the module docstring)."""
    nz = nonzeros()
    per_token = sum(_linear(*layer) for layer in _linears(mv_channels, s_channels, depth, markers, props))
    bilinears = depth * 2 * (nz["gp"] + nz["join"]) * mv_channels
    return bodies * (per_token + bilinears) + depth * _attention_flops(mv_channels, s_channels, bodies)


def idealised_training_flops(*, mv_channels: int, s_channels: int, depth: int, bodies: int, markers: int,
                             props: int) -> int:
    """Idealised forward + backward FLOPs of one training sample (scene): 3 × forward less the first
    EquiLinear's input gradient, as the executed count."""
    forward = idealised_forward_flops(mv_channels=mv_channels, s_channels=s_channels, depth=depth, bodies=bodies,
                                      markers=markers, props=props)
    first = bodies * _linear(*_linears(mv_channels, s_channels, depth, markers, props)[0])
    return 3 * forward - first
