import pytest

from study.errors import ConfigError
from study.flops import forward_flops, param_count
from study.models import FAMILIES, build_model, default_shape, get_family, validate_shape


def test_families_and_flags():
    assert {"transformer", "transformer-aug", "gatr"} <= set(FAMILIES)
    assert get_family("transformer-aug").augment is True
    assert get_family("transformer").augment is False
    assert get_family("transformer").shape_params == ("width", "depth")
    assert get_family("gatr").shape_params == ("mv_channels", "s_channels", "depth")


@pytest.mark.parametrize("family", ["transformer", "transformer-aug", "gatr"])
def test_default_shape_builds(family):
    shape = default_shape(family)
    assert set(shape) == set(get_family(family).shape_params)
    model = build_model(family, **shape)
    assert sum(p.numel() for p in model.parameters()) == param_count(family, **shape)
    assert forward_flops(family, bodies=4, **shape) > 0


def test_unknown_family_lists_known():
    with pytest.raises(ConfigError, match="transformer"):
        get_family("resnet")


@pytest.mark.parametrize(
    "family, shape, word",
    [
        ("transformer", {"width": 100, "depth": 2}, "width"),
        ("transformer", {"width": 64, "depth": 0}, "depth"),
        ("transformer", {"width": 64}, "depth"),
        ("transformer", {"width": 64, "depth": 1, "heads": 2}, "heads"),
        ("transformer", {"width": 64.5, "depth": 1}, "width"),
        ("gatr", {"mv_channels": 25, "s_channels": 48, "depth": 1}, "mv_channels"),
        ("gatr", {"mv_channels": 32, "s_channels": 18, "depth": 1}, "s_channels"),
        ("gatr", {"mv_channels": 8, "s_channels": 0, "depth": 1}, "s_channels"),
        ("gatr", {"mv_channels": 8, "s_channels": 16, "depth": 0}, "depth"),
    ],
)
def test_bad_shapes_name_the_parameter(family, shape, word):
    with pytest.raises(ConfigError, match=word):
        validate_shape(family, **shape)
    with pytest.raises(ConfigError, match=word):
        build_model(family, **shape)
    with pytest.raises(ConfigError, match=word):
        forward_flops(family, **shape)
