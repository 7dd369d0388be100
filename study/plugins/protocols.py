"""The extension points of equiscale as small protocols: what a family, search space, task, sampler or kind must have.

A plugin is any object with these members (duck-typed, like Optuna's samplers); `check_protocol` names the
first missing one. The built-in families, spaces, the rigid-body task, the samplers and the compute/data kinds
implement the same protocols and register through the same mechanism (`study.plugins.loader`).
"""

from __future__ import annotations

from typing import Any, Mapping, Protocol, Sequence

from study.errors import ConfigError


class Family(Protocol):
    """An architecture family: builds a network for a shape and counts its FLOPs and parameters.

    `sample` is the task's description of one sample (`Task.sample_dims`, e.g. bodies, markers, props);
    `shape` holds exactly `shape_params`.
    """

    name: str
    shape_params: tuple[str, ...]
    default_shape: Mapping[str, int]
    minimum: Mapping[str, int]      # smallest value of each shape parameter
    augment: bool                   # train on batches the task augments (`Task.augment`)
    equivariant: bool

    def build(self, sample: Mapping[str, int], shape: Mapping[str, int]) -> Any: ...      # nn.Module
    def validate(self, shape: Mapping[str, int]) -> None: ...                               # ConfigError
    def forward_flops(self, sample: Mapping[str, int], shape: Mapping[str, int]) -> int: ...  # per sample
    def backward_flops(self, sample: Mapping[str, int], shape: Mapping[str, int]) -> int: ...  # as executed
    def param_count(self, sample: Mapping[str, int], shape: Mapping[str, int]) -> int: ...


class SearchSpace(Protocol):
    """A define-by-run space of one study: suggestions -> `search_spaces.Proposal` (shape, lr, steps, FLOPs)."""

    def __call__(self, trial: Any, spec: Any) -> Any: ...           # (optuna.Trial, StudySpec) -> Proposal
    def check(self, spec: Any) -> None: ...                         # ConfigError when the study is infeasible
    def grid(self, spec: Any, points: int) -> dict[str, list]: ...  # the search space of sampler "grid"


class Task(Protocol):
    """The data and the objective: splits, batches, the loss, the augmentation, the equivariance check.

    `parse` turns the study file's `[data]` table into the task's frozen settings (ConfigError naming a bad key);
    a dataset (`load`) has `train`, `val`, `test` splits (indexable, `len`, `.to(device)`), a `key` naming its
    settings, and `numpy()`/`tensors()` for Ray's object store (`study.plugins.TensorDataset` is one).
    """

    name: str

    def parse(self, raw: Mapping[str, Any], where: str) -> Any: ...
    def sample_dims(self, settings: Any) -> Mapping[str, int]: ...
    def train_scenes(self, settings: Any) -> int: ...     # size of the training split
    def describe(self, settings: Any) -> str: ...         # one progress line
    def record(self, settings: Any) -> dict: ...          # the settings that must match on resume
    def dataset_key(self, settings: Any) -> str: ...      # names the data `load` returns (before loading it)
    def load(self, settings: Any, *, cache_dir: Any, progress: bool) -> Any: ...
    def batch(self, split: Any, index: Any) -> tuple[tuple, Any]: ...        # (model inputs, target)
    def augment(self, inputs: tuple, target: Any, generator: Any) -> tuple[tuple, Any]: ...
    def errors(self, prediction: Any, target: Any) -> Any: ...  # per-element loss; the loss is their mean
    def equivariance_error(self, model: Any, split: Any, generator: Any) -> float: ...


class Sampler(Protocol):
    """Which Optuna sampler a study uses: `make(spec, seed)` -> optuna.samplers.BaseSampler, and how many trials a
    study still needs given its stored trials. An adaptive sampler (`adaptive`) also has `decide(spec, trials)`
    -> `search_spaces.refine.Decision` and `params(spec, size, lr)`: it picks every point itself. An optional
    `raisable` (names in its table) lists settings a resumed study may raise: they decide only which trials the
    study asks for next (more extensions, a larger cap), never what a stored trial computed."""

    name: str
    counts_points: bool     # the target counts distinct points (a grid), not trials
    section: str | None     # its own study-file table (e.g. "isoflop"), None for none
    adaptive: bool

    def parse(self, raw: Mapping[str, Any], where: str) -> Any: ...
    def make(self, spec: Any, *, seed: int) -> Any: ...
    def check(self, spec: Any) -> None: ...                         # ConfigError: the study cannot use it
    def target(self, settings: Any, trials: int) -> int: ...       # a study's target from the file's `trials`
    def remaining(self, spec: Any, trials: Sequence[Any]) -> int: ...


class Kind(Protocol):
    """A study kind: its own study-file table, its checks, and the studies of a run (`StudySpec`s)."""

    name: str
    section: str | None     # its study-file table (e.g. "data_study"), None for none
    budgets: bool           # its studies are per budget (the study file must give budgets) or not (it may not)

    def parse(self, raw: Mapping[str, Any], where: str) -> Any: ...
    def validate(self, context: Any) -> None: ...
    def studies(self, context: Any) -> Sequence[Any]: ...     # (StudyPlan, ...) in run order
    def record(self, context: Any) -> dict: ...               # its settings that must match on resume


MEMBERS: dict[str, tuple[str, ...]] = {
    "families": ("name", "shape_params", "default_shape", "minimum", "augment", "equivariant", "build", "validate",
                 "forward_flops", "backward_flops", "param_count"),
    "spaces": ("__call__", "check", "grid"),
    "tasks": ("name", "parse", "sample_dims", "train_scenes", "describe", "record", "dataset_key", "load", "batch", "augment",
              "errors", "equivariance_error"),
    "samplers": ("name", "counts_points", "section", "adaptive", "parse", "make", "check", "target", "remaining"),
    "kinds": ("name", "section", "budgets", "parse", "validate", "studies", "record"),
}


DATA_MEMBERS = {"name", "shape_params", "default_shape", "minimum", "augment", "equivariant", "section",
                "counts_points", "budgets", "adaptive"}


def check_protocol(obj: Any, group: str, what: str) -> Any:
    """`obj` if it has every member of `group`'s protocol; ConfigError naming the first missing one."""
    for member in MEMBERS[group]:
        if not hasattr(obj, member):
            raise ConfigError(f"{what} is missing {member!r} (a {group[:-1]} needs: {', '.join(MEMBERS[group])})")
        if member not in DATA_MEMBERS and not callable(getattr(obj, member)):
            raise ConfigError(f"{what}: {member!r} is not callable")
    return obj
