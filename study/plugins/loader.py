"""Finding plugins: by name among the installed entry points (`equiscale.families`, `equiscale.spaces`,
`equiscale.tasks`, `equiscale.samplers`, `equiscale.kinds`), or by an import path a study file gives.

The built-in families, spaces, task, samplers and kinds are entry points of equiscale's own package
(pyproject.toml), so a user's package registers its own exactly the same way. Every failure is a
one-line ConfigError naming what is missing.
"""

from __future__ import annotations

import importlib
from functools import lru_cache
from importlib.metadata import distributions
from typing import Any

from study.errors import ConfigError
from study.plugins.protocols import MEMBERS, check_protocol

GROUPS = tuple(MEMBERS)                     # families, spaces, tasks, samplers, kinds
DEFAULT_ATTRIBUTE = {"families": "family", "spaces": "space", "tasks": "task", "samplers": "sampler",
                     "kinds": "kind"}       # the attribute an import path without ":attr" names


@lru_cache(maxsize=None)
def registered(group: str) -> dict[str, Any]:
    """name -> entry point of every installed plugin of `group`. Every distribution on the path is read (not only
    the first of each name), so a stale copy of a package's metadata, e.g. an `.egg-info` left in a source tree,
    cannot hide the entry points of the installed one; the first definition of a name wins."""
    found: dict[str, Any] = {}
    for dist in distributions():
        for ep in dist.entry_points.select(group=f"equiscale.{group}"):
            found.setdefault(ep.name, ep)
    return found


def names(group: str) -> list[str]:
    """The installed plugins of `group`, sorted."""
    return sorted(registered(group))


def load(group: str, name: str, *, path: str | None = None) -> Any:
    """The plugin `name` of `group`: from `path` ("pkg.module" or "pkg.module:attribute") when given, else the
    installed entry point of that name; checked against the group's protocol."""
    if path is not None:
        return _from_path(group, name, path)
    if not isinstance(name, str) or name not in registered(group):
        raise ConfigError(f"unknown {_singular(group)} {name!r} "
                          f"(known: {', '.join(names(group)) or 'none'}; a package registers one as an "
                          f"'equiscale.{group}' entry point)")
    return _entry_point(group, name)


@lru_cache(maxsize=None)
def _entry_point(group: str, name: str) -> Any:
    entry = registered(group)[name]
    try:
        obj = entry.load()
    except Exception as exc:  # a plugin that does not import: one line naming it
        raise ConfigError(f"{_singular(group)} {name!r}: entry point {entry.value!r} does not load: "
                          f"{type(exc).__name__}: {exc}") from None
    return check_protocol(obj, group, f"{_singular(group)} {name!r} ({entry.value})")


@lru_cache(maxsize=None)
def _from_path(group: str, name: str, path: str) -> Any:
    module_name, _, attribute = path.partition(":")
    attribute = attribute or DEFAULT_ATTRIBUTE[group]
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:
        raise ConfigError(f"{_singular(group)} {name!r}: module {module_name!r} does not import: "
                          f"{type(exc).__name__}: {exc}") from None
    if not hasattr(module, attribute):
        raise ConfigError(f"{_singular(group)} {name!r}: module {module_name!r} has no {attribute!r}")
    return check_protocol(getattr(module, attribute), group, f"{_singular(group)} {name!r} ({path})")


def _singular(group: str) -> str:
    return {"families": "family", "kinds": "study kind", "spaces": "search space"}.get(group, group[:-1])
