"""Analytic FLOP and parameter counts for any family (an installed one by name, or a family object) and shape.

Convention (DESIGN "Compute accounting"), the one place it is stated:
- Every matrix product counts 2·m·n·k (projections, attention scores and weighted sums, MLPs, input
  and output maps, GATr's equivariant maps as the dense 16·in × 16·out products they execute);
  elementwise work counts 0.
- The budget is **training FLOPs as executed**: forward + backward of every training step, the
  backward counted as it runs (each product twice its forward, except the first layer, whose input
  needs no gradient and runs only its weight gradient). `step_flops` is one optimizer step;
  `training_flops` is `samples` samples. No family executes a product once per step rather than per
  sample (GATr places its dense equivariant weights by indexing, 0 FLOPs), so a step costs
  batch_size × the per-sample count exactly. The optimizer update and the loss are elementwise.
- Only the model's forward and backward count. Data preparation does not: transformer-aug's E(3)
  augmentation runs three (L × 3)·(3 × 3) products per scene (L = bodies × markers; 864 FLOPs at
  4 bodies × 4 markers), the same for every shape, outside the model (and so outside the budget).
- `nominal_training_flops` = 3 × forward × samples, the customary estimate; it over-counts small
  models by the first layer's missing input gradient and may be stored beside the budget, never as it.
These counts equal torch's `FlopCounterMode` on a real forward + backward step (attention under
`sdpa_kernel(SDPBackend.MATH)`; the fused CPU kernel counts 0), checked in tests/test_flops.py.
"""

from __future__ import annotations

from typing import Any, Mapping

from study.benchmark.format import MARKERS, PROPS
from study.models.registry import resolve_family, validate_shape


def forward_flops(family: str, *, bodies: int = 4, markers: int = MARKERS, props: int = PROPS,
                  **shape: Any) -> int:
    """Forward FLOPs of one sample (one scene of `bodies` bodies) for `family` at `shape`."""
    clean = validate_shape(family, **shape)
    sample = {"bodies": bodies, "markers": markers, "props": props}
    return int(resolve_family(family).forward_flops(sample, clean))


def sample_training_flops(family: str, *, bodies: int = 4, markers: int = MARKERS, props: int = PROPS,
                          **shape: Any) -> int:
    """Forward + backward FLOPs of one sample as executed (the budget's unit)."""
    clean = validate_shape(family, **shape)
    fam, sample = resolve_family(family), {"bodies": bodies, "markers": markers, "props": props}
    return int(fam.forward_flops(sample, clean)) + int(fam.backward_flops(sample, clean))


def step_flops(family: str, *, batch_size: int, bodies: int = 4, markers: int = MARKERS,
               props: int = PROPS, **shape: Any) -> int:
    """Training FLOPs of one optimizer step on `batch_size` samples: forward + backward as executed."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    return batch_size * sample_training_flops(family, bodies=bodies, markers=markers, props=props, **shape)


def training_flops(family: str, *, samples: int, bodies: int = 4, batch_size: int | None = None,
                   markers: int = MARKERS, props: int = PROPS, **shape: Any) -> int:
    """Training FLOPs of `samples` samples as executed (the budget C).

    `batch_size` is accepted for symmetry with `step_flops`; no family has per-step products, so it
    does not change the count (steps × step_flops(batch_size) when samples = steps × batch_size)."""
    if batch_size is not None and batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    return samples * sample_training_flops(family, bodies=bodies, markers=markers, props=props, **shape)


def nominal_training_flops(family: str, *, samples: int, bodies: int = 4, markers: int = MARKERS,
                           props: int = PROPS, **shape: Any) -> int:
    """The nominal count 3 × forward FLOPs × samples (stored beside the budget, not the budget)."""
    return 3 * samples * forward_flops(family, bodies=bodies, markers=markers, props=props, **shape)


def param_count(family: str, *, markers: int = MARKERS, props: int = PROPS, **shape: Any) -> int:
    """Trainable parameters of `family` at `shape` (equals sum(p.numel()) of the built module)."""
    clean = validate_shape(family, **shape)
    return int(resolve_family(family).param_count({"markers": markers, "props": props}, clean))


def sample_flops(family: Any, sample: Mapping[str, int], shape: Mapping[str, Any]) -> tuple[int, int]:
    """(forward, forward + backward as executed) FLOPs of one sample for any family and task sample."""
    fam = resolve_family(family)
    clean = validate_shape(fam, **shape)
    forward = int(fam.forward_flops(sample, clean))
    return forward, forward + int(fam.backward_flops(sample, clean))


def sample_params(family: Any, sample: Mapping[str, int], shape: Mapping[str, Any]) -> int:
    """Trainable parameters of any family at `shape` for a task's sample."""
    fam = resolve_family(family)
    return int(fam.param_count(sample, validate_shape(fam, **shape)))
