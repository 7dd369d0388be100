"""The Optuna storage as the source of truth: check it, open it, create/resume studies, fail stale trials.

Resume model: at start each study's RUNNING trials (left by a dead driver) are marked FAIL, its COMPLETE
trials are counted, and only the remainder is asked for. One driver per study at a time.
"""

from __future__ import annotations

from dataclasses import dataclass

import optuna
from optuna.trial import TrialState

from study import schema
from study.adapter import fail_trial
from study.errors import ConfigError
from study.plugins.tables import omitted_defaults
from study.samplers import count_complete
from study.schema import StudyAttrs
from study.spec import RunSpec, StudySpec

STALE_REASON = "driver stopped before the trial finished (stale RUNNING trial failed on resume)"
INTERRUPTED_REASON = "driver interrupted (SIGINT/SIGTERM) before the trial finished"


@dataclass(frozen=True)
class StudyState:
    """One study at the start of a run: how many COMPLETE trials exist and how many are still wanted."""

    spec: StudySpec
    complete: int
    target: int
    stale_failed: int
    still: int | None = None    # trials still wanted, as the sampler counts them (None: target - complete)

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def family(self) -> str:
        return self.spec.family_name

    @property
    def budget(self) -> float:
        return self.spec.budget

    @property
    def remaining(self) -> int:
        return max(0, self.target - self.complete) if self.still is None else self.still


def prepare_studies(storage, run: RunSpec, dataset_key: str) -> list[StudyState]:
    """Create or load every study, check it matches the config, fail its stale RUNNING trials, count COMPLETE.

    Every existing study is checked before any is created or changed, so a refused run writes nothing.
    """
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    existing = {s.study_name: s for s in optuna.get_all_study_summaries(storage, include_best_trial=False)}
    specs = run.studies
    wanted = check_studies(existing, run, dataset_key)
    states = []
    for spec in specs:
        study = optuna.create_study(storage=storage, study_name=spec.name, direction="minimize", load_if_exists=True)
        schema.write_study_attrs(study, wanted[spec.name])
        stale = fail_stale_trials(study)
        trials = study.get_trials(deepcopy=False)
        complete = count_complete(trials, distinct=spec.sampler.counts_points)
        still = spec.sampler.remaining(spec, trials)
        target = complete + still if spec.sampler.adaptive else spec.trials
        states.append(StudyState(spec, complete, target, stale, still))
    return states


def check_studies(existing: dict, run: RunSpec, dataset_key: str) -> dict[str, StudyAttrs]:
    """The attributes of every study of the run; ConfigError (nothing written) when a stored study of the same
    name was made with other settings. `existing`: study name -> summary (with `user_attrs`)."""
    wanted = {spec.name: study_attrs(run, spec, dataset_key) for spec in run.studies}
    for spec in run.studies:
        if spec.name in existing:    # `raisable`: the settings its sampler lets a resumed study raise
            check_compatible(spec.name, existing[spec.name].user_attrs, wanted[spec.name],
                             raisable=tuple(getattr(spec.sampler, "raisable", ())),
                             defaults=omitted_defaults(spec.sampler_settings))
    return wanted


def remaining_trials(storage_url: str, run: RunSpec) -> dict[str, int]:
    """Trials each study of `run` still needs, as its sampler counts them from the storage (read only: a missing
    or empty storage needs every study's full count). A RUNNING trial of a dead driver counts as not there."""
    return remaining_of(run, stored_trials(storage_url, run))


def remaining_of(run: RunSpec, stored: dict[str, list]) -> dict[str, int]:
    """Trials each study of `run` still needs, given its stored trials (`stored_trials`)."""
    return {spec.name: spec.sampler.remaining(spec, stored[spec.name]) for spec in run.studies}


def stored_trials(storage_url: str, run: RunSpec) -> dict[str, list]:
    """Each study of `run`'s trials in the storage, RUNNING ones left out (read only; none when it is missing)."""
    from study.storage import holds_studies, open_storage

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    existing = set()
    if holds_studies(storage_url):
        rdb = open_storage(storage_url, read_only=True)
        existing = {s.study_name for s in optuna.get_all_study_summaries(rdb, include_best_trial=False)}
    out = {}
    for spec in run.studies:
        trials = []
        if spec.name in existing:
            trials = [t for t in optuna.load_study(study_name=spec.name, storage=rdb).get_trials(deepcopy=False)
                      if t.state != TrialState.RUNNING]
        out[spec.name] = trials
    return out


def study_attrs(run: RunSpec, spec: StudySpec, dataset_key: str) -> StudyAttrs:
    """The attributes a study of this run carries."""
    return StudyAttrs(family=spec.family_name, budget=float(spec.budget), batch_size=int(spec.batch_size),
                      dataset_key=dataset_key, target_trials=int(spec.trials), settings=dict(run.settings),
                      kind=spec.kind, train_size=int(spec.train_size), claims=dict(run.claims))


def fail_stale_trials(study, reason: str = STALE_REASON) -> int:
    """Mark the study's RUNNING trials FAIL (with the reason as a user attribute); return how many."""
    stale = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    for trial in stale:
        fail_trial(study, trial, reason)
    return len(stale)


def check_compatible(name: str, stored: dict, attrs: StudyAttrs, *, raisable: tuple[str, ...] = (),
                     defaults: dict | None = None) -> None:
    """Refuse to mix trials of different settings into one study (it would corrupt the comparison).

    A study stored before settings were recorded is checked on what it has. The sampler settings named in
    `raisable` may be raised (never lowered): they change which trials come next, not what a stored one computed.
    `defaults`: the values of sampler settings a stored study omits because they were at their defaults.
    """
    old = schema.read_study_attrs(stored)
    if old is None:
        raise ConfigError(f"study {name!r} in the storage was not made by equiscale (no family/budget attributes): "
                          f"use another --storage")
    pairs = [("kind", old.kind, attrs.kind), ("train_size", old.train_size, attrs.train_size),
             ("family", old.family, attrs.family), ("budget", old.budget, attrs.budget),
             ("batch_size", old.batch_size, attrs.batch_size), ("dataset_key", old.dataset_key, attrs.dataset_key)]
    pairs += [(key, value, attrs.settings.get(key)) for key, value in sorted((old.settings or {}).items())]
    for key, was, now in pairs:
        if key == "sampler_settings" and _raised_only(was, now, raisable, defaults or {}):
            continue
        if was != now:
            may = f" (of these only {', '.join(raisable)} may be raised)" if key == "sampler_settings" and raisable else ""
            raise ConfigError(f"study {name!r} in the storage has {key}={was!r} but this run has {now!r}{may}: "
                              f"use another --storage or the original settings")


def _raised_only(was, now, raisable: tuple[str, ...], defaults: dict) -> bool:
    """Whether sampler settings `now` differ from the stored `was` only by raising settings named in `raisable`
    (a setting `was` omits counts at its default; false -> true raises a flag)."""
    if not isinstance(was, dict) or not isinstance(now, dict):
        return False
    was = {**{k: defaults[k] for k in now.keys() - was.keys() if k in defaults}, **was}
    if was.keys() != now.keys():
        return False
    return all(now[k] == v or (k in raisable and isinstance(v, (int, float)) and isinstance(now[k], (int, float))
                               and now[k] > v) for k, v in was.items())
