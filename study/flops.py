"""Analytic forward FLOPs per sample and parameter counts, for every registered family and shape.

Convention (DESIGN "Compute accounting"): every matrix product counts 2·m·n·k, elementwise work is
ignored; training FLOPs = 3 × forward FLOPs × samples. Checked against
`torch.utils.flop_counter.FlopCounterMode` in tests/test_flops.py.
"""

from __future__ import annotations

from typing import Any

from study.benchmark.format import MARKERS, PROPS
from study.models.registry import get_family, validate_shape


def forward_flops(family: str, *, bodies: int = 4, markers: int = MARKERS, props: int = PROPS,
                  **shape: Any) -> int:
    """Forward FLOPs of one sample (one scene of `bodies` bodies) for `family` at `shape`."""
    clean = validate_shape(family, **shape)
    return int(get_family(family).forward_flops(bodies=bodies, markers=markers, props=props, **clean))


def param_count(family: str, *, markers: int = MARKERS, props: int = PROPS, **shape: Any) -> int:
    """Trainable parameters of `family` at `shape` (equals sum(p.numel()) of the built module)."""
    clean = validate_shape(family, **shape)
    return int(get_family(family).param_count(markers=markers, props=props, **clean))


def training_flops(family: str, *, samples: int, bodies: int = 4, markers: int = MARKERS,
                   props: int = PROPS, **shape: Any) -> int:
    """C = 3 × forward FLOPs × samples seen."""
    return 3 * samples * forward_flops(family, bodies=bodies, markers=markers, props=props, **shape)
