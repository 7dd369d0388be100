"""Generation settings of the benchmark, validated in one place, and the cache key derived from them."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import numbers
from dataclasses import dataclass

from study.errors import ConfigError

# Bump when the sampling ranges, the simulation or the file layout change: old cache files stop matching.
FORMAT_VERSION = 3
MAX_BODIES = 64


@dataclass(frozen=True)
class BenchmarkConfig:
    """How to generate the dataset: every field enters the cache key."""

    scenes: int = 10_000          # S: scenes in all splits together
    bodies: int = 4               # K: rigid bodies per scene
    seed: int = 0
    horizon: float = 0.5          # seconds simulated; targets are the markers at t = horizon
    dt: float = 0.002             # MuJoCo time step, seconds
    val_fraction: float = 0.1
    test_fraction: float = 0.1

    def __post_init__(self):
        for name, minimum, maximum in (("scenes", 1, None), ("bodies", 1, MAX_BODIES), ("seed", 0, 2**63 - 1)):
            object.__setattr__(self, name, _integer(name, getattr(self, name), minimum=minimum, maximum=maximum))
        for name in ("horizon", "dt"):
            object.__setattr__(self, name, _positive(name, getattr(self, name)))
        if self.steps < 1:
            raise ConfigError(f"horizon must be at least one time step (dt={self.dt}), got {self.horizon}")
        for name in ("val_fraction", "test_fraction"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0 <= value < 1:
                raise ConfigError(f"{name} must be in [0, 1), got {value!r}")
        if self.split_sizes()[0] < 1:
            raise ConfigError(
                f"no training scenes left: scenes={self.scenes}, val_fraction={self.val_fraction}, "
                f"test_fraction={self.test_fraction}")

    @property
    def steps(self) -> int:
        """Number of MuJoCo steps in the horizon."""
        return int(round(self.horizon / self.dt))

    def split_sizes(self) -> tuple[int, int, int]:
        """(train, val, test) scene counts; val and test round down, train takes the rest."""
        val = int(math.floor(self.scenes * self.val_fraction))
        test = int(math.floor(self.scenes * self.test_fraction))
        return self.scenes - val - test, val, test

    @property
    def key(self) -> str:
        """Cache key: readable prefix plus a hash of every setting and the format version."""
        settings = dict(dataclasses.asdict(self), format_version=FORMAT_VERSION)
        digest = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:12]
        return f"rigid-K{self.bodies}-S{self.scenes}-seed{self.seed}-{digest}"

    def replace(self, **changes) -> "BenchmarkConfig":
        """A copy with some settings changed (validated again); unknown names are a ConfigError."""
        unknown = set(changes) - {f.name for f in dataclasses.fields(self)}
        if unknown:
            raise ConfigError(f"unknown benchmark setting(s): {', '.join(sorted(unknown))}")
        return dataclasses.replace(self, **changes)


def _integer(name: str, value, *, minimum: int, maximum: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ConfigError(f"{name} must be an integer, got {value!r}")
    if value < minimum or (maximum is not None and value > maximum):
        bound = f">= {minimum}" if maximum is None else f"in [{minimum}, {maximum}]"
        raise ConfigError(f"{name} must be {bound}, got {value}")
    return int(value)


def _positive(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value) or value <= 0:
        raise ConfigError(f"{name} must be a positive number of seconds, got {value!r}")
    return float(value)
