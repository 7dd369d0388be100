"""Parsing a study file's TOML table into a frozen dataclass, for the config and for plugins' own tables."""

from __future__ import annotations

from dataclasses import fields, is_dataclass
from typing import Any, Callable, Mapping

from study.errors import ConfigError

TYPES = {"int": int, "float": float, "str": str, "str | None": str, "bool": bool}


def parse_table(cls: type, raw: Mapping[str, Any], where: str, *,
                parsers: Mapping[str, Callable[[str, Any], Any]] | None = None,
                derived: frozenset[str] = frozenset()) -> Any:
    """`cls(**raw)` with unknown keys and wrong types rejected by name (`parsers`: key -> parse(where, value)
    for structured values; `derived`: fields a study file may not set)."""
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where} must be a table")
    known = {f.name: f for f in fields(cls) if f.name not in derived}
    unknown = set(raw) - set(known)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}")
    parsers = parsers or {}
    return cls(**{k: parsers[k](f"{where} {k}", v) if k in parsers else typed(f"{where} {k}", v, TYPES[str(known[k].type)])
                  for k, v in raw.items()})


def typed(where: str, value: Any, kind: type) -> Any:
    """Check a TOML value's type (ints are accepted as floats, not vice versa; no bools as numbers)."""
    if kind is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where} must be true or false, got {value!r}")
        return value
    if isinstance(value, bool) or not (isinstance(value, kind) or (kind is float and isinstance(value, int))):
        raise ConfigError(f"{where} must be {kind.__name__}, got {value!r}")
    try:
        return kind(value)
    except OverflowError:  # an integer beyond float's range (tomllib reads integers of any size)
        raise ConfigError(f"{where} must be a finite number, got an integer of {len(str(abs(value)))} digits") from None


def int_list(where: str, value: Any) -> tuple[int, ...]:
    """A TOML list of integers as a tuple."""
    if not isinstance(value, list):
        raise ConfigError(f"{where} must be a list of integers, got {value!r}")
    return tuple(typed(where, v, int) for v in value)


def omitted_defaults(settings: Any) -> dict[str, Any]:
    """The defaults of the settings a dataclass table lists in `OMIT_AT_DEFAULT` (added after studies were stored,
    so a study stores them only when they differ): a stored study that lacks one had it at this value."""
    if settings is None or not is_dataclass(settings):
        return {}
    omit = getattr(settings, "OMIT_AT_DEFAULT", ())
    return {f.name: f.default for f in fields(settings) if f.name in omit}
