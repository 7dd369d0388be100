"""The 2-head families (transformer-2h, transformer-aug-2h, gatr-2h): the built-in networks with 2 attention
heads at every size, registered under their own names, and their spaces' ladders of the sizes 2 heads divide."""

from __future__ import annotations

import pytest
import torch

from search_spaces import two_heads
from search_spaces.budget import _valid_sizes
from study.errors import ConfigError
from study.models import build_model, get_family

CASES = [("transformer-2h", "transformer", {"width": 10, "depth": 2}),
         ("transformer-2h", "transformer", {"width": 66, "depth": 1}),
         ("transformer-aug-2h", "transformer", {"width": 14, "depth": 2}),
         ("gatr-2h", "gatr", {"mv_channels": 2, "s_channels": 4, "depth": 2}),
         ("gatr-2h", "gatr", {"mv_channels": 16, "s_channels": 32, "depth": 1})]


def _heads(model) -> list[int]:
    """The head count of every attention layer, read from the modules (transformer blocks, GATr attention)."""
    return [getattr(block, "attention", block).heads for block in model.blocks]


@pytest.mark.parametrize("name, base, shape", CASES)
def test_every_size_has_two_heads_and_computes_what_the_base_network_with_two_heads_computes(name, base, shape):
    torch.manual_seed(3)
    model = build_model(name, **shape).double()
    torch.manual_seed(3)
    reference = get_family(base).build_fn(markers=4, props=8, heads=2, **shape).double()
    assert _heads(model) == [2] * shape["depth"]
    # the rule would give 1 head at the small shapes and 2 at width 66 and 16 channels: the options win
    g = torch.Generator().manual_seed(0)
    pos0, vel0 = torch.randn(5, 4, 4, 3, generator=g).double(), torch.randn(5, 4, 4, 3, generator=g).double()
    props = torch.rand(5, 4, 8, generator=g).double()
    torch.testing.assert_close(model(pos0, vel0, props), reference(pos0, vel0, props), rtol=0, atol=0)


def test_flags_follow_the_base_families():
    assert get_family("transformer-aug-2h").augment is True
    assert get_family("transformer-2h").augment is False
    assert get_family("gatr-2h").equivariant is True and get_family("gatr").equivariant is True
    assert dict(get_family("gatr-2h").options) == {"heads": 2} and get_family("gatr").options == ()


@pytest.mark.parametrize("name, shape, message", [
    ("transformer-2h", {"width": 13, "depth": 2}, "heads must be >= 1 and divide width 13, got 2"),
    ("gatr-2h", {"mv_channels": 3, "s_channels": 6, "depth": 2},
     "heads must be >= 1 and divide mv_channels 3 and s_channels 6, got 2")])
def test_a_size_two_heads_do_not_divide_is_refused_naming_it(name, shape, message):
    with pytest.raises(ConfigError, match=message):
        build_model(name, **shape)


@pytest.mark.parametrize("space, name, sizes", [(two_heads.transformer, "transformer-2h", range(8, 200)),
                                                 (two_heads.transformer_aug, "transformer-aug-2h", range(8, 200)),
                                                 (two_heads.gatr, "gatr-2h", range(1, 100))])
def test_the_ladders_hold_exactly_the_even_sizes(space, name, sizes):
    small = type(space)(family=space.family, depths=space.depths, sizes=tuple(sizes), shape=space.shape)
    assert _valid_sizes(small, get_family(name)) == tuple(s for s in sizes if s % 2 == 0)


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
