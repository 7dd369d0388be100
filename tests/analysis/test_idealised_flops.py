"""GATr's idealised FLOP count against a direct count: the built network's equivariant layers and MLPs, and
the nonzero entries of the basis maps and product tables counted here with torch.count_nonzero."""

import pytest
import torch

from study.models import gatr
from study.models.gatr.layers.linear import EquiLinear
from study.models.gatr.layers.mlp import GeometricMLP
from study.models.gatr.primitives import linear_basis, table

SAMPLE = {"bodies": 4, "markers": 4, "props": 5}


def _direct(shape: dict) -> tuple[int, int]:
    """(idealised forward, idealised training) FLOPs of one scene, from the built module's layers."""
    model = gatr.build(markers=SAMPLE["markers"], props=SAMPLE["props"], **shape)
    basis = linear_basis()
    dense_nonzeros = int(torch.count_nonzero(basis[1:]))   # the maps the dense product holds (<x>_0 is scalar)
    bilinear_nonzeros = int(torch.count_nonzero(table("gp"))) + int(torch.count_nonzero(table("join")))
    executed = gatr.forward_flops(**SAMPLE, **shape)
    linears = [m for m in model.modules() if isinstance(m, EquiLinear)]
    # executed charges 2·(16·in)·(16·out) per token; idealised 2·nonzeros·in·out
    delta = sum(2 * (dense_nonzeros - 256) * m.in_mv * m.out_mv for m in linears)
    bilinears = sum(2 * bilinear_nonzeros * m.mv for m in model.modules() if isinstance(m, GeometricMLP))
    forward = executed + SAMPLE["bodies"] * (delta + bilinears)
    first = linears[0]   # the embedding: no input gradient, so its backward is once its forward
    first_forward = 2 * dense_nonzeros * first.in_mv * first.out_mv
    if first.scalar is not None:
        first_forward += 2 * first.scalar.in_features * first.scalar.out_features
    return forward, 3 * forward - SAMPLE["bodies"] * first_forward


@pytest.mark.parametrize("shape", [{"mv_channels": 8, "s_channels": 16, "depth": 2},
                                   {"mv_channels": 2, "s_channels": 8, "depth": 1},
                                   {"mv_channels": 16, "s_channels": 32, "depth": 3}])
def test_idealised_count_equals_a_direct_count_of_nonzero_terms(shape):
    forward, training = _direct(shape)
    from study.models.gatr.idealised_flops import idealised_forward_flops

    assert idealised_forward_flops(**SAMPLE, **shape) == forward
    assert gatr.idealised_training_flops(**SAMPLE, **shape) == training
    executed = gatr.forward_flops(**SAMPLE, **shape) + gatr.backward_flops(**SAMPLE, **shape)
    assert training < executed   # 23 of 256 terms of every dense map: far cheaper than executed


def test_the_tables_have_the_documented_nonzeros():
    assert int(torch.count_nonzero(table("gp"))) == 192 and int(torch.count_nonzero(table("outer"))) == 81
