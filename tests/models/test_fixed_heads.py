"""The fixed-head families (transformer-2h, transformer-aug-2h, gatr-2h; transformer-1h, transformer-aug-1h, gatr-1h):
the built-in networks with 2 (1) attention heads at every size, registered under their own names, and their spaces'
ladders of the sizes the head count divides."""

from __future__ import annotations

import pytest
import torch

from search_spaces import fixed_heads
from search_spaces.budget import _valid_sizes
from study.errors import ConfigError
from study.models import build_model, get_family

CASES = [("transformer-2h", "transformer", 2, {"width": 10, "depth": 2}),
         ("transformer-2h", "transformer", 2, {"width": 66, "depth": 1}),
         ("transformer-aug-2h", "transformer", 2, {"width": 14, "depth": 2}),
         ("gatr-2h", "gatr", 2, {"mv_channels": 2, "s_channels": 4, "depth": 2}),
         ("gatr-2h", "gatr", 2, {"mv_channels": 16, "s_channels": 32, "depth": 1}),
         ("transformer-1h", "transformer", 1, {"width": 66, "depth": 2}),     # the rule: 2 heads
         ("transformer-aug-1h", "transformer", 1, {"width": 128, "depth": 1}),  # the rule: 4 heads
         ("gatr-1h", "gatr", 1, {"mv_channels": 16, "s_channels": 32, "depth": 2}),  # the rule: 2 heads
         ("gatr-1h", "gatr", 1, {"mv_channels": 3, "s_channels": 6, "depth": 1})]


def _heads(model) -> list[int]:
    """The head count of every attention layer, read from the modules (transformer blocks, GATr attention)."""
    return [getattr(block, "attention", block).heads for block in model.blocks]


@pytest.mark.parametrize("name, base, heads, shape", CASES)
def test_every_size_has_its_heads_and_computes_what_the_base_network_with_those_heads_computes(name, base, heads,
                                                                                                shape):
    torch.manual_seed(3)
    model = build_model(name, **shape).double()
    torch.manual_seed(3)
    reference = get_family(base).build_fn(markers=4, props=8, heads=heads, **shape).double()
    assert _heads(model) == [heads] * shape["depth"]
    # the width rule would give other head counts at some of these shapes (see CASES): the options win
    g = torch.Generator().manual_seed(0)
    pos0, vel0 = torch.randn(5, 4, 4, 3, generator=g).double(), torch.randn(5, 4, 4, 3, generator=g).double()
    props = torch.rand(5, 4, 8, generator=g).double()
    torch.testing.assert_close(model(pos0, vel0, props), reference(pos0, vel0, props), rtol=0, atol=0)


@pytest.mark.parametrize("heads", [1, 2])
def test_flags_follow_the_base_families(heads):
    assert get_family(f"transformer-aug-{heads}h").augment is True
    assert get_family(f"transformer-{heads}h").augment is False
    assert get_family(f"gatr-{heads}h").equivariant is True and get_family("gatr").equivariant is True
    assert dict(get_family(f"gatr-{heads}h").options) == {"heads": heads} and get_family("gatr").options == ()


@pytest.mark.parametrize("name, shape, message", [
    ("transformer-2h", {"width": 13, "depth": 2}, "heads must be >= 1 and divide width 13, got 2"),
    ("gatr-2h", {"mv_channels": 3, "s_channels": 6, "depth": 2},
     "heads must be >= 1 and divide mv_channels 3 and s_channels 6, got 2")])
def test_a_size_two_heads_do_not_divide_is_refused_naming_it(name, shape, message):
    with pytest.raises(ConfigError, match=message):
        build_model(name, **shape)


@pytest.mark.parametrize("space, name, sizes, heads", [
    (fixed_heads.transformer_2h, "transformer-2h", range(8, 200), 2),
    (fixed_heads.transformer_aug_2h, "transformer-aug-2h", range(8, 200), 2),
    (fixed_heads.gatr_2h, "gatr-2h", range(1, 100), 2),
    (fixed_heads.transformer_1h, "transformer-1h", range(8, 200), 1),
    (fixed_heads.transformer_aug_1h, "transformer-aug-1h", range(8, 200), 1),
    (fixed_heads.gatr_1h, "gatr-1h", range(1, 100), 1)])
def test_the_ladders_hold_exactly_the_sizes_the_head_count_divides(space, name, sizes, heads):
    small = type(space)(family=space.family, depths=space.depths, sizes=tuple(sizes), shape=space.shape)
    assert _valid_sizes(small, get_family(name)) == tuple(s for s in sizes if s % heads == 0)


def test_options_reach_build_and_only_those_validate_takes_reach_validate():
    """An option only `build` knows (GATr's zero_branches) builds that network and passes validation; one that
    validation checks (heads) is checked."""
    import dataclasses

    zero = dataclasses.replace(get_family("gatr"), options=(("zero_branches", True),))
    shape = {"mv_channels": 3, "s_channels": 6, "depth": 1}
    zero.validate(shape)
    model = zero.build({"bodies": 4, "markers": 4, "props": 8}, shape)
    branch_ends = [p for name, p in model.named_parameters() if ".attention.proj." in name or ".mlp.out." in name]
    assert branch_ends and all(bool((p == 0).all()) for p in branch_ends)     # the option reached the blocks
    with pytest.raises(ConfigError, match="divide mv_channels 3"):
        dataclasses.replace(zero, options=(("zero_branches", True), ("heads", 2))).validate(shape)
