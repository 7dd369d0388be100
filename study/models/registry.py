"""The built-in families as `study.plugins.Family` objects, and name-based helpers over every installed family.

A built-in family is a module exposing `build`, `validate`, `forward_flops`, `backward_flops`, `param_count`,
`SHAPE_PARAMS`, `DEFAULT_SHAPE`, `GRANULARITY`, `MINIMUM` (and optionally `EQUIVARIANT`), wrapped by
`ModuleFamily`; the objects below are registered as `equiscale.families` entry points in pyproject.toml, the
same mechanism a user's package uses. `get_family(name)` finds any installed family by name.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from functools import lru_cache
from types import ModuleType
from typing import Any, Callable, Mapping

from torch import nn

from study.benchmark.format import MARKERS, PROPS
from study.errors import ConfigError
from study.models import gatr as gatr_module
from study.models import transformer as transformer_module
from study.plugins import loader

RIGID_BODY_SAMPLE = {"bodies": 4, "markers": MARKERS, "props": PROPS}   # the rigid-body task's default sample


@dataclass(frozen=True)
class ModuleFamily:
    """A family whose maths lives in module functions taking the sample's dimensions and the shape as keywords
    (each function is handed only the dimensions it declares, e.g. `build(*, markers, props, **shape)`)."""

    name: str
    build_fn: Callable[..., nn.Module]
    forward_fn: Callable[..., int]
    backward_fn: Callable[..., int]
    params_fn: Callable[..., int]
    validate_fn: Callable[..., None]
    shape_params: tuple[str, ...]
    default_shape: Mapping[str, int]
    granularity: Mapping[str, int] = field(default_factory=dict)
    minimum: Mapping[str, int] = field(default_factory=dict)
    augment: bool = False
    equivariant: bool = False
    # keyword options of the task's augmentation (`Task.augment`), e.g. (("translation_scale", 0.0),): none
    augment_options: tuple[tuple[str, Any], ...] = ()
    # keyword options of the network at every shape, handed to `build_fn` and `validate_fn`, e.g. (("heads", 2),):
    # an architecture variant under its own name (FLOP and parameter counts must not depend on them)
    options: tuple[tuple[str, Any], ...] = ()

    def build(self, sample: Mapping[str, int], shape: Mapping[str, int]) -> nn.Module:
        return self.build_fn(**_accepted(self.build_fn, sample), **shape, **dict(self.options))

    def validate(self, shape: Mapping[str, int]) -> None:
        self.validate_fn(**shape, **_accepted(self.validate_fn, dict(self.options)))   # those it checks

    def forward_flops(self, sample: Mapping[str, int], shape: Mapping[str, int]) -> int:
        return int(self.forward_fn(**_accepted(self.forward_fn, sample), **shape))

    def backward_flops(self, sample: Mapping[str, int], shape: Mapping[str, int]) -> int:
        return int(self.backward_fn(**_accepted(self.backward_fn, sample), **shape))

    def param_count(self, sample: Mapping[str, int], shape: Mapping[str, int]) -> int:
        return int(self.params_fn(**_accepted(self.params_fn, sample), **shape))


def _accepted(fn: Callable, sample: Mapping[str, Any]) -> dict[str, Any]:
    """The sample dimensions (or options) `fn` takes as keyword arguments."""
    params = _parameters(fn)
    return {k: v for k, v in sample.items() if k in params}


@lru_cache(maxsize=None)
def _parameters(fn: Callable) -> frozenset[str]:
    """The parameter names of `fn` (read once: FLOP counts call this for every shape a space considers)."""
    return frozenset(inspect.signature(fn).parameters)


def from_module(name: str, module: ModuleType, *, augment: bool = False,
                augment_options: tuple[tuple[str, Any], ...] = (),
                options: tuple[tuple[str, Any], ...] = ()) -> ModuleFamily:
    """A family from a module of functions and constants (the layout of the built-in families)."""
    return ModuleFamily(
        name=name, build_fn=module.build, forward_fn=module.forward_flops, backward_fn=module.backward_flops,
        params_fn=module.param_count, validate_fn=module.validate, shape_params=tuple(module.SHAPE_PARAMS),
        default_shape=dict(module.DEFAULT_SHAPE), granularity=dict(module.GRANULARITY),
        minimum=dict(module.MINIMUM), augment=augment, equivariant=bool(getattr(module, "EQUIVARIANT", False)),
        augment_options=tuple(augment_options), options=tuple(options),
    )


# The built-in families (entry points `equiscale.families` in pyproject.toml).
transformer = from_module("transformer", transformer_module)
transformer_aug = from_module("transformer-aug", transformer_module, augment=True)
# the data study's control: the same augmentation without its translation (rotations and reflections only)
transformer_aug_notrans = from_module("transformer-aug-notrans", transformer_module, augment=True,
                                      augment_options=(("translation_scale", 0.0),))
gatr = from_module("gatr", gatr_module)
# The same networks with 2 attention heads at every size (the rule above changes the head count inside a size
# profile: docs/results/cpu/heads/README.md); only the sizes 2 divides (even widths, even multivector channels).
transformer_2h = from_module("transformer-2h", transformer_module, options=(("heads", 2),))
transformer_aug_2h = from_module("transformer-aug-2h", transformer_module, augment=True, options=(("heads", 2),))
gatr_2h = from_module("gatr-2h", gatr_module, options=(("heads", 2),))
# ... and with 1 head at every size: every width and multivector channel count, so the finest ladders
# (docs/results/README.md: the third study's GATr-2h ladder was too coarse at its smallest sizes).
transformer_1h = from_module("transformer-1h", transformer_module, options=(("heads", 1),))
transformer_aug_1h = from_module("transformer-aug-1h", transformer_module, augment=True, options=(("heads", 1),))
gatr_1h = from_module("gatr-1h", gatr_module, options=(("heads", 1),))

Family = ModuleFamily   # the built-in implementation of `study.plugins.Family`


def get_family(name: Any) -> Any:
    """The installed family called `name` (a `study.plugins.Family`); ConfigError listing the known ones otherwise."""
    if not isinstance(name, str) or name not in loader.registered("families"):
        raise ConfigError(f"unknown model family {name!r} (known: {', '.join(loader.names('families'))})")
    return loader.load("families", name)


def family_names() -> list[str]:
    """Every installed family, sorted."""
    return loader.names("families")


def resolve_family(family: Any) -> Any:
    """A family object, given one or the name of an installed one."""
    return get_family(family) if isinstance(family, str) else family


def validate_shape(family: Any, **shape: Any) -> dict[str, int]:
    """Check that `shape` has exactly the family's parameters with usable values; returns it as ints."""
    fam = resolve_family(family)
    unknown = sorted(set(shape) - set(fam.shape_params))
    if unknown:
        raise ConfigError(
            f"{fam.name}: unknown shape parameter {unknown[0]!r} (expected {', '.join(fam.shape_params)})"
        )
    missing = [p for p in fam.shape_params if p not in shape]
    if missing:
        raise ConfigError(f"{fam.name}: missing shape parameter {missing[0]!r}")
    clean: dict[str, int] = {}
    for name in fam.shape_params:
        value = shape[name]
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                value = int(value)
            else:
                raise ConfigError(f"{fam.name}: shape parameter {name!r} must be an integer, got {value!r}")
        low = fam.minimum.get(name, 1)
        if value < low:
            raise ConfigError(f"{fam.name}: shape parameter {name!r} must be >= {low}, got {value}")
        clean[name] = int(value)
    fam.validate(clean)
    return clean


def default_shape(family: Any) -> dict[str, int]:
    """A small valid shape of the family (for smoke tests and examples)."""
    return dict(resolve_family(family).default_shape)


def build_model(family: Any, *, markers: int = MARKERS, props: int = PROPS, sample: Mapping[str, int] | None = None,
                **shape: Any) -> nn.Module:
    """The family's network for `shape` (rigid-body sample by default: forward(pos0, vel0, props) -> posT)."""
    fam = resolve_family(family)
    clean = validate_shape(fam, **shape)
    return fam.build(dict(sample) if sample is not None else {**RIGID_BODY_SAMPLE, "markers": markers, "props": props},
                     clean)


class _Installed(Mapping):
    """name -> family of every installed family (read-only, loaded on access)."""

    def __getitem__(self, name: str) -> Any:
        if name not in loader.registered("families"):
            raise KeyError(name)
        return get_family(name)

    def __iter__(self):
        return iter(family_names())

    def __len__(self) -> int:
        return len(family_names())


FAMILIES: Mapping[str, Any] = _Installed()
