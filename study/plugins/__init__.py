"""The public extension API: protocols for families, search spaces, tasks, samplers and study kinds, and the
loader that finds them (installed entry points `equiscale.<group>`, or an import path in a study file)."""

from study.plugins.loader import load, names
from study.plugins.protocols import Family, Kind, Sampler, SearchSpace, Task, check_protocol

__all__ = ["Family", "Kind", "Sampler", "SearchSpace", "Task", "check_protocol", "load", "names"]
