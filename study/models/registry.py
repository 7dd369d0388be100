"""Registry of model families: name -> builder, shape parameters, FLOP/parameter counts, augmentation.

Adding a family = one module exposing `build`, `validate`, `forward_flops`, `backward_flops`,
`param_count`, `SHAPE_PARAMS`, `DEFAULT_SHAPE`, `GRANULARITY`, `MINIMUM` (and optionally
`EQUIVARIANT`) plus one `_register(...)` line at the bottom.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import ModuleType
from typing import Any, Callable, Mapping

from torch import nn

from study.benchmark.format import MARKERS, PROPS
from study.errors import ConfigError
from study.models import gatr, transformer


@dataclass(frozen=True)
class Family:
    """One architecture family as the study sees it.

    build(*, markers, props, **shape) -> nn.Module mapping (pos0, vel0, props) to predicted posT;
    forward_flops(*, bodies, markers, props, **shape) -> analytic forward FLOPs per sample (scene);
    backward_flops(*, bodies, markers, props, **shape) -> backward FLOPs per sample as executed;
    param_count(*, markers, props, **shape) -> trainable parameters;
    validate(**shape) raises ConfigError naming the bad parameter.
    granularity: the multiple each shape parameter should be rounded to by a search space;
    minimum: the smallest value of each shape parameter.
    """

    name: str
    build: Callable[..., nn.Module]
    shape_params: tuple[str, ...]
    augment: bool
    forward_flops: Callable[..., int]
    backward_flops: Callable[..., int]
    param_count: Callable[..., int]
    validate: Callable[..., None]
    default_shape: Mapping[str, int]
    granularity: Mapping[str, int] = field(default_factory=dict)
    minimum: Mapping[str, int] = field(default_factory=dict)
    equivariant: bool = False


FAMILIES: dict[str, Family] = {}


def _register(name: str, module: ModuleType, *, augment: bool = False) -> None:
    FAMILIES[name] = Family(
        name=name,
        build=module.build,
        shape_params=tuple(module.SHAPE_PARAMS),
        augment=augment,
        forward_flops=module.forward_flops,
        backward_flops=module.backward_flops,
        param_count=module.param_count,
        validate=module.validate,
        default_shape=dict(module.DEFAULT_SHAPE),
        granularity=dict(module.GRANULARITY),
        minimum=dict(module.MINIMUM),
        equivariant=bool(getattr(module, "EQUIVARIANT", False)),
    )


def get_family(name: str) -> Family:
    """The registered family called `name`; ConfigError listing the known ones otherwise."""
    try:
        return FAMILIES[name]
    except (KeyError, TypeError):
        known = ", ".join(sorted(FAMILIES))
        raise ConfigError(f"unknown model family {name!r} (known: {known})") from None


def validate_shape(family: str, **shape: Any) -> dict[str, int]:
    """Check that `shape` has exactly the family's parameters with usable values; returns it as ints."""
    fam = get_family(family)
    unknown = sorted(set(shape) - set(fam.shape_params))
    if unknown:
        raise ConfigError(
            f"{family}: unknown shape parameter {unknown[0]!r} (expected {', '.join(fam.shape_params)})"
        )
    missing = [p for p in fam.shape_params if p not in shape]
    if missing:
        raise ConfigError(f"{family}: missing shape parameter {missing[0]!r}")
    clean: dict[str, int] = {}
    for name in fam.shape_params:
        value = shape[name]
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                value = int(value)
            else:
                raise ConfigError(f"{family}: shape parameter {name!r} must be an integer, got {value!r}")
        low = fam.minimum.get(name, 1)
        if value < low:
            raise ConfigError(f"{family}: shape parameter {name!r} must be >= {low}, got {value}")
        clean[name] = int(value)
    fam.validate(**clean)
    return clean


def default_shape(family: str) -> dict[str, int]:
    """A small valid shape of the family (for smoke tests and examples)."""
    return dict(get_family(family).default_shape)


def build_model(family: str, *, markers: int = MARKERS, props: int = PROPS, **shape: Any) -> nn.Module:
    """The family's network for `shape`: forward(pos0 (B,K,M,3), vel0 (B,K,M,3), props (B,K,P)) -> (B,K,M,3)."""
    clean = validate_shape(family, **shape)
    return get_family(family).build(markers=markers, props=props, **clean)


_register("transformer", transformer)
_register("transformer-aug", transformer, augment=True)
_register("gatr", gatr)
