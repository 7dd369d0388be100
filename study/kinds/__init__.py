"""Study kinds (`study.plugins.Kind`): the built-in `compute` and `data` kinds, and the context a kind resolves
its studies from. Both are `equiscale.kinds` entry points (pyproject.toml), as a user's kind would be."""

from study.kinds.context import KindContext

__all__ = ["KindContext"]
