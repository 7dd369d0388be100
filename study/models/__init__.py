"""Model families and their registry: `build_model(family, **shape)` and friends."""

from study.models.registry import (
    FAMILIES,
    Family,
    build_model,
    default_shape,
    get_family,
    validate_shape,
)
from study.models.equivariance import equivariance_error

__all__ = [
    "FAMILIES",
    "Family",
    "build_model",
    "default_shape",
    "equivariance_error",
    "get_family",
    "validate_shape",
]
