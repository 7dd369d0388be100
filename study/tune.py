"""Run the (family, budget) studies through Ray Tune, one Optuna study (via OptunaSearch) per pair.

All studies share one `Tuner` and one pool of reused actors: a small searcher hands each new Tune trial
to the study with the most trials still to go, so the cluster stays busy to the end. Each study's
searcher turns its space's proposal into a `TrialPlan` for the worker, and writes what comes back into
the Optuna storage through `study.schema`: the learning curve as intermediate values at training
steps, the user attributes the analysis reads, and the final state (COMPLETE only for a run that
trained its full budget; FAIL with a `fail_reason` otherwise).

Stacked replicates (`[resources] stack = R`, R > 1): when an adaptive sampler proposes several points of one size
at once (isoflop: its lr sweep, its seed replicates; lrgrid: a data study's lr grid and seeds), the searcher asks up to R Optuna trials for them and hands them to
one Tune trial as a group, trained by `study.stacked.train_group` as one stacked model, where
`study.stacked.worth_stacking` says it pays (small steps on a CPU). Each member stays its own Optuna trial: its
own seed, learning rate, learning curve, attributes and state (a diverged member FAILs alone). A member's
`train_seconds`/`wall_seconds` are its share of the group's (equal shares among the members alive at each step),
so a study's seconds still add up to the worker time it took; `stacked_with` names the group's trials. The
group checkpoints as one (Tune's checkpoint of the group state) and a retried worker resumes the whole group.
Grid and TPE studies ask one trial at a time and never stack.
"""

from __future__ import annotations

import math
import socket
import tempfile
import zlib
from dataclasses import dataclass, replace
from functools import partial

import optuna
from optuna.trial import TrialState

from search_spaces import Proposal
from study import schema
from study.adapter import optuna_search_base
from study.checkpoint import CheckpointSaver, load_checkpoint
from study.errors import EquiscaleError
from study.progress import Progress
from study.records import TrainResult, TrialPlan
from study.resume import StudyState, prepare_studies
from study.spec import ResourceConfig, RunSpec, StudySpec
from study.stacked import train_group, worth_stacking
from study.training import RunEnded, train

METRIC = schema.VAL_LOSS  # the metric Tune reports: the trial's objective
MAX_ROUNDS = 3  # Tune runs per invocation: later rounds replace trials that failed in earlier ones


@dataclass(frozen=True)
class PlanDefaults:
    """What every trial of one study shares besides its proposal: budget, optimiser settings, resources."""

    family: str
    budget: float
    study: str
    base_seed: int
    weight_decay: float
    warmup_fraction: float
    grad_clip: float
    evals: int
    val_samples: int
    threads: int
    device: str
    checkpoint_seconds: float
    train_size: int = 0                 # data study: training scenes (0: the whole split)
    eval_at: tuple[int, ...] = ()       # data study: validation after these steps (ends of epochs)
    model: object = None                # the family object
    task: object = None                 # the task object
    sample: tuple = ()                  # the task's sample dimensions, sorted (name, value) pairs
    time_cap_seconds: float = math.inf  # training seconds after which a run stops, its trial FAIL (inf: none)
    stack: int = 1                      # members of a stacked group, at most (1: every trial alone)
    compile: bool = False               # each trial's model through torch.compile

    def plan(self, proposal: Proposal, *, seed: int) -> TrialPlan:
        """The worker's plan for one proposal."""
        return TrialPlan(
            family=self.family, budget=self.budget, shape=dict(proposal.shape), lr=proposal.lr,
            steps=proposal.steps, batch_size=proposal.batch_size, step_flops=proposal.step_flops,
            forward_flops=proposal.forward_flops, params=proposal.params, seed=seed,
            weight_decay=self.weight_decay, warmup_fraction=self.warmup_fraction, grad_clip=self.grad_clip,
            evals=self.evals, val_samples=self.val_samples, threads=self.threads, device=self.device,
            checkpoint_seconds=self.checkpoint_seconds, train_size=self.train_size, eval_at=self.eval_at,
            model=self.model, task=self.task, sample=self.sample, time_cap_seconds=self.time_cap_seconds,
            compile=self.compile,
        )


def plan_defaults(spec: StudySpec, resources: ResourceConfig) -> PlanDefaults:
    """What every trial of the study `spec` shares (a data study: its training-set size and per-epoch validations)."""
    o, r = spec.optimiser, resources
    return PlanDefaults(
        family=spec.family_name, budget=float(spec.budget), study=spec.name, base_seed=spec.seed,
        weight_decay=o.weight_decay, warmup_fraction=o.warmup_fraction, grad_clip=o.grad_clip, evals=o.evals,
        val_samples=o.val_samples, threads=max(1, int(r.cpus_per_trial)),
        device="cuda" if r.gpus_per_trial > 0 else "cpu", checkpoint_seconds=o.checkpoint_seconds,
        train_size=spec.train_size, eval_at=tuple(spec.eval_at), model=spec.family, task=spec.task,
        sample=tuple(sorted(spec.sample.items())), stack=r.stack, time_cap_seconds=o.time_cap_seconds,
        compile=r.compile,
    )


def trainable(config: dict, dataset=None) -> None:
    """Tune function trainable: train `config["plan"]`, report the curve, then the final result (or the failure).

    Every `plan.checkpoint_seconds` the training state goes to Tune as a checkpoint; a retried trial (its
    worker died) starts from the last one, so its result counts the whole run once.
    """
    from ray import tune

    dataset = dataset.tensors() if dataset is not None else None   # views of the object store's arrays: no copy
    if "plans" in config:
        return train_members(config["plans"], dataset)
    plan: TrialPlan = config["plan"]

    def report(step: int, val_loss: float) -> None:
        tune.report({METRIC: val_loss, "step": step})

    try:
        result = train(plan, dataset, report=report, checkpoint=CheckpointSaver(),
                       resume=load_checkpoint(tune.get_checkpoint()))
    except RunEnded as exc:  # diverged or past the time cap: a retry would end the same, so report, not raise
        tune.report({METRIC: float("nan"), "step": exc.step, "failed": str(exc)})
        return
    except Exception as exc:  # Tune retries it; the text reaches the driver for the fail reason if retries run out
        tune.report({METRIC: float("nan"), "step": 0, "error": f"{type(exc).__name__}: {exc}"[:500]})
        raise
    result = replace(result, node=node_name())
    tune.report({METRIC: result.val_loss, "step": plan.steps, "result": result})


def train_members(plans: tuple[TrialPlan, ...], dataset) -> None:
    """A stacked group's trainable: each member's curve reported with its index (`"member"`), then one final
    report whose `"results"` hold per member its `TrainResult` or why it failed (a diverged member alone)."""
    from ray import tune

    def report(member: int, step: int, val_loss: float) -> None:
        tune.report({METRIC: val_loss, "step": step, "member": member})

    try:
        results = train_group(plans, dataset, report=report, checkpoint=CheckpointSaver(),
                              resume=load_checkpoint(tune.get_checkpoint()))
    except Exception as exc:  # not a divergence (those fail their member alone): Tune retries the whole group
        tune.report({METRIC: float("nan"), "step": 0, "error": f"{type(exc).__name__}: {exc}"[:500]})
        raise
    node = node_name()
    finals = [replace(r, node=node) if isinstance(r, TrainResult) else str(r) for r in results]
    values = [r.val_loss for r in finals if isinstance(r, TrainResult) and math.isfinite(r.val_loss)]
    tune.report({METRIC: min(values, default=float("nan")), "step": plans[0].steps, "result": None,
                 "results": finals})


def node_name() -> str:
    """Where a trial ran: host name and Ray node id (two Ray nodes can share a host)."""
    import ray

    return f"{socket.gethostname()}/{ray.get_runtime_context().get_node_id()[:12]}"


def trial_seed(study: str, number: int, base_seed: int) -> int:
    """The seed of a trial's initialisation and minibatches: fixed by the study, trial number and config seed."""
    return zlib.crc32(f"{study}/{number}/{base_seed}".encode())


def _study_search_class():
    from ray.tune.search import Searcher

    class StudySearch(optuna_search_base()):
        """OptunaSearch for one study: a typed plan per trial, curves at training steps, honest final states."""

        def __init__(self, *, name: str, defaults: PlanDefaults, progress: Progress, spec: StudySpec | None = None,
                     **kwargs):
            super().__init__(study_name=name, metric=METRIC, mode="min", **kwargs)
            self.name, self.defaults, self.progress, self.spec = name, defaults, progress, spec
            self.plans: dict[str, tuple[TrialPlan, ...]] = {}      # per Tune trial: its members' plans
            self.members: dict[str, tuple[optuna.Trial, ...]] = {}  # per Tune trial: its members' Optuna trials
            self.errors: dict[str, str] = {}  # the last exception a trial's worker reported, per Tune trial

        def suggest(self, trial_id: str, *, room: int = 1):
            """One Tune trial's config: `{"plan": plan}`, or `{"plans": plans}` for a stacked group of at most
            `room` members (the trials the study still has to go)."""
            adaptive = self.spec is not None and self.spec.sampler.adaptive
            group = []
            if adaptive:                                               # the sampler picks the point from the storage
                decision = self.spec.sampler.decide(self.spec, self._ot_study.get_trials(deepcopy=False))
                if decision.done:
                    self.progress.study_done(self.name)              # its cap no longer counts in the ETA
                    for note in decision.notes:
                        self.progress.message(f"{self.name}: {note}")
                    return Searcher.FINISHED
                if not decision.propose:
                    return None                                        # wait for a running trial's result
                group = stack_group(decision.propose, limit=min(self.defaults.stack, max(1, room)))
                self._ot_study.enqueue_trial(self.spec.sampler.params(self.spec, *group[0]), skip_if_exists=False)
            suggestion = super().suggest(trial_id)
            if not isinstance(suggestion, dict):
                return suggestion  # FINISHED or None: nothing to plan
            trials = [self.study_trial(trial_id)]
            plans = [self._plan(trials[0], suggestion["proposal"])]
            if adaptive:
                schema.write_proposal(trials[0], phase=decision.phase, rule_lr=self.spec.sampler.lr_rule(self.spec))
                if len(group) > 1 and worth_stacking(plans[0]):
                    for point in group[1:]:                            # the other members: one Optuna trial each
                        self._ot_study.enqueue_trial(self.spec.sampler.params(self.spec, *point),
                                                     skip_if_exists=False)
                        trial = self._ot_study.ask()
                        schema.write_proposal(trial, phase=decision.phase,
                                              rule_lr=self.spec.sampler.lr_rule(self.spec))
                        trials.append(trial)
                        plans.append(self._plan(trial, _propose(self.spec, trial)["proposal"]))
            self.plans[trial_id], self.members[trial_id] = tuple(plans), tuple(trials)
            if len(plans) == 1:
                return {"plan": plans[0]}
            for trial in trials:
                schema.write_stacked_with(trial, [t.number for t in trials])
            return {"plans": tuple(plans)}

        def _plan(self, trial: optuna.Trial, proposal: Proposal) -> TrialPlan:
            return self.defaults.plan(proposal, seed=trial_seed(self.name, trial.number, self.defaults.base_seed))

        def on_trial_result(self, trial_id: str, result: dict) -> None:
            if "error" in result:
                self.errors[trial_id] = str(result["error"])
            if "result" in result or "failed" in result or "error" in result or self.ended(trial_id):
                return
            # the learning curve in the storage: at training steps, or per epoch in a data study
            member = int(result.get("member", 0))
            point = self.plans[trial_id][member].curve_step(int(result["step"]))
            if point > 0:
                self.members[trial_id][member].report(float(result[METRIC]), point)

        def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
            if self.ended(trial_id) or self.study_trial(trial_id) is None:
                return
            result = result or {}
            finals = result.get("results") or [result.get("result")]   # a group's: one per member
            error_text = self.errors.pop(trial_id, None)
            for i, (plan, trial) in enumerate(zip(self.plans[trial_id], self.members[trial_id])):
                final = finals[i] if i < len(finals) else None
                if isinstance(final, TrainResult) and math.isfinite(final.val_loss):
                    schema.write_trial_attrs(trial, schema.trial_attrs(plan, final))
                    self._tell(trial_id, i, value=float(final.val_loss), state=TrialState.COMPLETE)
                    self.progress.trial_finished(self.name, value=float(final.val_loss),   # a stacked member's:
                                                 seconds=final.wall_seconds)                # its share
                    continue
                reason = final if isinstance(final, str) else result.get("failed") or (
                    ("worker error (retries exhausted)" + (f": {error_text}" if error_text else ""))
                    if error else "stopped early")
                schema.write_fail_reason(trial, reason)
                self._tell(trial_id, i, value=None, state=TrialState.FAIL)
                self.progress.trial_finished(self.name, value=None, detail=reason)

        def _tell(self, trial_id: str, member: int, *, value: float | None, state: TrialState) -> None:
            if member == 0:
                self.tell(trial_id, value=value, state=state)        # the Tune trial's own Optuna trial
            else:
                self._ot_study.tell(self.members[trial_id][member], value, state=state, skip_if_finished=True)

    return StudySearch


def _multi_searcher_class():
    from ray.tune.search import Searcher

    class MultiStudySearcher(Searcher):
        """Feeds one Tune run from several studies: each new trial goes to the study with most trials to go."""

        def __init__(self, searchers: dict, remaining: dict[str, int]):
            super().__init__(metric=METRIC, mode="min")
            self.searchers, self.remaining = searchers, dict(remaining)
            self.owner: dict[str, str] = {}

        def _priority(self, name: str) -> tuple:
            # most trials to go first; among equals the largest budget (longest trials first: shorter tail)
            return self.remaining[name], self.searchers[name].defaults.budget

        @property
        def finished(self) -> bool:
            """Every study has what it needs (its count is reached, or its adaptive sampler is done)."""
            return all(n <= 0 for n in self.remaining.values())

        def suggest(self, trial_id: str):
            waiting = False
            for name in sorted(self.remaining, key=self._priority, reverse=True):
                if self.remaining[name] <= 0:
                    continue
                config = self.searchers[name].suggest(trial_id, room=self.remaining[name])
                if config == Searcher.FINISHED:
                    self.remaining[name] = 0       # an adaptive study decided it is done
                    continue
                if config is None:
                    waiting = True                 # it waits for a running trial: try the next study
                    continue
                self.remaining[name] -= len(config.get("plans", ())) or 1
                self.owner[trial_id] = name
                return config
            return None if waiting else Searcher.FINISHED

        def on_trial_result(self, trial_id: str, result: dict) -> None:
            self.searchers[self.owner[trial_id]].on_trial_result(trial_id, result)

        def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
            if trial_id in self.owner:
                self.searchers[self.owner[trial_id]].on_trial_complete(trial_id, result=result, error=error)

    return MultiStudySearcher


def stack_group(proposals, *, limit: int) -> list:
    """The first proposal and up to `limit` - 1 more of the same size (one shape, steps and batch: one group)."""
    size = proposals[0][0]
    return [p for p in proposals if p[0] == size][:max(1, limit)]


def _space(spec: StudySpec):
    """The define-by-run function OptunaSearch calls with a trial: the study space's proposal."""
    return partial(_propose, spec)


def _propose(spec: StudySpec, trial) -> dict:
    return {"proposal": spec.space(trial, spec)}


def sampler_for(state: StudyState, n_trials: int) -> optuna.samplers.BaseSampler:
    """The study's sampler (its spec's sampler plugin), seeded by the study, how many trials it already has and the
    run's seed: "tpe" is Optuna's TPE (constant liar); "grid" the space's grid of `trials` points, a point whose
    trial failed handed out again (`study.adapter.GridSampler`)."""
    spec = state.spec
    seed = zlib.crc32(f"{state.name}/{n_trials}/{spec.seed}".encode())
    return spec.sampler.make(spec, seed=seed)


def concurrency(resources: ResourceConfig) -> int:
    """Trials at once: `max_concurrent`, or as many as the cluster's CPUs (and GPUs) fit."""
    import ray

    r = resources
    if r.max_concurrent:
        return r.max_concurrent
    resources = ray.cluster_resources()
    slots = int(resources.get("CPU", 1) // r.cpus_per_trial)
    if r.gpus_per_trial > 0:
        slots = min(slots, int(resources.get("GPU", 0) // r.gpus_per_trial))
    if slots < 1:
        raise EquiscaleError(f"the Ray cluster ({resources}) cannot fit one trial of {r.cpus_per_trial} CPU "
                             f"and {r.gpus_per_trial} GPU")
    return slots


def run_round(run: RunSpec, storage, states: list[StudyState], dataset, progress: Progress) -> None:
    """One Tuner run asking every study for its remaining trials."""
    from ray import tune

    todo = [s for s in states if s.remaining > 0]
    if not todo:
        return
    StudySearch, MultiStudySearcher = _study_search_class(), _multi_searcher_class()
    searchers = {}
    for s in todo:
        n_trials = len(optuna.load_study(study_name=s.name, storage=storage).get_trials(deepcopy=False))
        searchers[s.name] = StudySearch(name=s.name, space=_space(s.spec), storage=storage,
                                        sampler=sampler_for(s, n_trials), spec=s.spec,
                                        defaults=plan_defaults(s.spec, run.resources), progress=progress)
    searcher = MultiStudySearcher(searchers, {s.name: s.remaining for s in todo})
    total = sum(s.remaining for s in todo)
    r = run.resources
    resources = {"cpu": r.cpus_per_trial, "gpu": r.gpus_per_trial}
    with tempfile.TemporaryDirectory(prefix="equiscale-tune-") as workdir:
        tuner = tune.Tuner(
            # NumPy arrays: every worker maps the object store's one copy (pickled tensors were copied into each
            # worker on every trial; at 2^21 scenes two workers outgrew 24 GiB)
            tune.with_resources(tune.with_parameters(trainable, dataset=dataset.numpy()), resources),
            tune_config=tune.TuneConfig(search_alg=searcher, num_samples=total,
                                        max_concurrent_trials=concurrency(run.resources), reuse_actors=True),
            run_config=tune.RunConfig(name="equiscale", storage_path=workdir, verbose=0,
                                      failure_config=tune.FailureConfig(max_failures=r.max_failures),
                                      checkpoint_config=tune.CheckpointConfig(num_to_keep=1)),
        )
        results = tuner.fit()
    if results.num_terminated + results.num_errors < total and not searcher.finished:
        raise KeyboardInterrupt("the Tune run stopped before all its trials ended")  # e.g. Ctrl-C


def run_studies(run: RunSpec, *, storage, states: list[StudyState], dataset,
                progress: Progress | None = None) -> list[StudyState]:
    """Run every prepared study until each has its target COMPLETE trials (or the rounds run out).

    Ray must already be running (`study.adapter.start_ray`); `states` come from `prepare_studies`.
    """
    progress = progress or Progress()
    for s in states:
        progress.add_study(s.name, complete=s.complete, target=s.target, best=best_value(storage, s.name),
                           capped=s.spec.sampler.adaptive)
        if s.stale_failed:
            progress.message(f"{s.name}: {s.stale_failed} unfinished trial(s) of an earlier run marked FAIL")
    for _ in range(MAX_ROUNDS):
        if all(s.remaining == 0 for s in states):
            break
        before = sum(s.complete for s in states)
        run_round(run, storage, states, dataset, progress)
        states = prepare_studies(storage, run, dataset.key)
        if sum(s.complete for s in states) == before:
            break  # no progress: another round would fail the same way
    return states


def best_value(storage, name: str) -> float | None:
    trials = optuna.load_study(study_name=name, storage=storage).get_trials(
        deepcopy=False, states=(TrialState.COMPLETE,))
    return min((t.value for t in trials), default=None)
