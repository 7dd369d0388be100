"""Run the (family, budget) studies through Ray Tune, one Optuna study (via OptunaSearch) per pair.

All studies share one `Tuner` and one pool of reused actors: a small searcher hands each new Tune trial
to the study with the most trials still to go, so the cluster stays busy to the end. Each study's
`OptunaSearch` (subclassed) writes the trial into the Optuna storage: the learning curve as intermediate
values at training steps, the user attributes the analysis reads, and the final state (COMPLETE only
for a run that trained its full budget; FAIL with a `fail_reason` otherwise).
"""

from __future__ import annotations

import logging
import math
import os
import socket
import tempfile
import zlib
from functools import partial

from study.config import StudyConfig, study_name
from study.errors import EquiscaleError
from study.progress import Progress
from study.resume import StudyState, prepare_studies

# Quiet Ray/Tune before they are imported: our own progress lines replace their tables and loggers.
os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")
os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
os.environ.setdefault("RAY_DEDUP_LOGS", "0")
os.environ.setdefault("TUNE_MAX_PENDING_TRIALS_PG", "1")
os.environ.setdefault("RAY_TRAIN_V2_ENABLED", "0")
os.environ.setdefault("RAY_worker_niceness", "0")  # Ray nices workers by default: trials lose to any other load

METRIC = "val_loss"
MAX_ROUNDS = 3  # Tune runs per invocation: later rounds replace trials that failed in earlier ones


def trainable(config: dict, dataset=None) -> None:
    """Tune function trainable: train one shape and report the curve, then the final metrics (or the failure)."""
    from ray import tune

    from study.training import DivergenceError, train

    def report(step: int, val_loss: float) -> None:
        tune.report({METRIC: val_loss, "step": step})

    try:
        metrics = train(
            config["family"], config["shape"], lr=config["lr"], steps=config["steps"],
            batch_size=config["batch_size"], dataset=dataset, seed=config["seed"],
            weight_decay=config["weight_decay"], warmup_fraction=config["warmup_fraction"],
            grad_clip=config["grad_clip"], evals=config["evals"], val_samples=config["val_samples"],
            threads=config["threads"], device=config["device"], report=report,
        )
    except DivergenceError as exc:  # deterministic: a retry would diverge again, so report instead of raising
        tune.report({METRIC: float("nan"), "step": exc.step, "failed": str(exc)})
        return
    final = {k: v for k, v in metrics.items() if k != "curve"}
    tune.report({**final, "step": config["steps"], "final": True, "node": socket.gethostname()})


def trial_seed(study: str, number: int, base_seed: int) -> int:
    """The seed of a trial's initialisation and minibatches: fixed by the study, trial number and config seed."""
    return zlib.crc32(f"{study}/{number}/{base_seed}".encode())


def _optuna_search_class():
    from ray.tune.search.optuna import OptunaSearch

    class StudySearch(OptunaSearch):
        """OptunaSearch for one study: curves at training steps, our user attributes, honest final states."""

        def __init__(self, *, name: str, constants: dict, progress: Progress, **kwargs):
            super().__init__(study_name=name, metric=METRIC, mode="min", **kwargs)
            self.name, self.constants, self.progress = name, constants, progress
            self.configs: dict[str, dict] = {}

        def suggest(self, trial_id: str):
            config = super().suggest(trial_id)
            seed = trial_seed(self.name, self._ot_trials[trial_id].number, self.constants["base_seed"])
            config = {**config, **self.constants, "seed": seed}
            self.configs[trial_id] = config
            return config

        def on_trial_result(self, trial_id: str, result: dict) -> None:
            if "final" in result or "failed" in result or trial_id in self._completed_trials:
                return
            self._ot_trials[trial_id].report(float(result[METRIC]), int(result["step"]))

        def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
            from optuna.trial import TrialState

            if trial_id in self._completed_trials or trial_id not in self._ot_trials:
                return
            trial = self._ot_trials[trial_id]
            result = result or {}
            value = result.get(METRIC)
            if result.get("final") and value is not None and math.isfinite(value):
                for key, attr in _user_attrs(self.configs[trial_id], result).items():
                    trial.set_user_attr(key, attr)
                self._ot_study.tell(trial, float(value), state=TrialState.COMPLETE)
                self.progress.trial_finished(self.name, value=float(value))
            else:
                reason = result.get("failed") or ("worker error (retries exhausted)" if error else "stopped early")
                trial.set_user_attr("fail_reason", reason)
                self._ot_study.tell(trial, state=TrialState.FAIL)
                self.progress.trial_finished(self.name, value=None, detail=reason)
            self._completed_trials.add(trial_id)

    return StudySearch


def _user_attrs(config: dict, result: dict) -> dict:
    """The trial's user attributes (the analysis contract): shape, N, D, steps, FLOPs, losses, time, node."""
    return {
        "params": int(config["params"]),
        "samples": int(result["samples"]),
        "steps": int(result["steps"]),
        "flops_used": 3.0 * float(config["flops_per_sample"]) * int(result["samples"]),
        "flops_per_sample": float(config["flops_per_sample"]),
        "val_loss": float(result[METRIC]),
        "test_loss": float(result["test_loss"]),
        "train_loss": float(result["train_loss"]),
        "wall_seconds": float(result["wall_seconds"]),
        "equivariance_error": float(result["equivariance_error"]),
        "node": str(result["node"]),
        "shape": dict(config["shape"]),
        "lr": float(config["lr"]),
        "measured_params": int(result["params"]),
    }


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
            return self.remaining[name], self.searchers[name].constants["budget"]

        def suggest(self, trial_id: str):
            name = max(self.remaining, key=self._priority, default=None)
            if name is None or self.remaining[name] <= 0:
                return Searcher.FINISHED
            config = self.searchers[name].suggest(trial_id)
            self.remaining[name] -= 1
            self.owner[trial_id] = name
            return config

        def on_trial_result(self, trial_id: str, result: dict) -> None:
            self.searchers[self.owner[trial_id]].on_trial_result(trial_id, result)

        def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
            if trial_id in self.owner:
                self.searchers[self.owner[trial_id]].on_trial_complete(trial_id, result=result, error=error)

    return MultiStudySearcher


def _space(family: str, budget: float, config: StudyConfig):
    """The define-by-run function OptunaSearch calls with a trial: the family's space at this budget."""
    from search_spaces import space_for

    return partial(_call_space, space_for(family), budget, config)


def _call_space(space, budget, config, trial):
    return space(trial, budget=budget, config=config)


def _constants(family: str, budget: float, config: StudyConfig) -> dict:
    t, r = config.training, config.resources
    return {
        "family": family, "budget": float(budget), "study": study_name(family, budget), "base_seed": config.seed,
        "weight_decay": t.weight_decay, "warmup_fraction": t.warmup_fraction, "grad_clip": t.grad_clip,
        "evals": t.evals, "val_samples": t.val_samples, "threads": max(1, int(r.cpus_per_trial)),
        "device": "cuda" if r.gpus_per_trial > 0 else "cpu",
    }


def check_address(address: str | None, *, timeout: float = 3.0) -> None:
    """One-line error when a Ray address (host:port, optionally ray://) does not accept connections."""
    if not address or address in ("auto", "local"):
        return
    hostport = address.split("://", 1)[-1]
    host, _, port = hostport.rpartition(":")
    if not host or not port.isdigit():
        raise EquiscaleError(f"malformed Ray address {address!r} (expected HOST:PORT)")
    try:
        socket.create_connection((host, int(port)), timeout=timeout).close()
    except OSError as exc:
        raise EquiscaleError(f"Ray address {address!r} unreachable: {exc.strerror or exc}") from None


def start_ray(address: str | None) -> None:
    """Connect to a cluster (`address`) or start a private local one; Ray's own logging kept quiet."""
    import ray

    kwargs = dict(log_to_driver=False, logging_level=logging.ERROR, configure_logging=True)
    try:
        if address:
            ray.init(address=address, **kwargs)
        else:
            ray.init(address="local", include_dashboard=False, **kwargs)
    except (OSError, TimeoutError, RuntimeError) as exc:
        raise EquiscaleError(f"cannot start/connect Ray{f' at {address!r}' if address else ''}: {exc}") from None
    for name in ("ray", "ray.tune", "ray.train", "ray.air"):
        logging.getLogger(name).setLevel(logging.CRITICAL)


def _concurrency(config: StudyConfig) -> int:
    import ray

    r = config.resources
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


def run_round(config: StudyConfig, storage, states: list[StudyState], dataset, progress: Progress) -> None:
    """One Tuner run asking every study for its remaining trials."""
    import optuna
    from ray import tune

    todo = [s for s in states if s.remaining > 0]
    if not todo:
        return
    StudySearch, MultiStudySearcher = _optuna_search_class(), _multi_searcher_class()
    searchers = {}
    for s in todo:
        n_trials = len(optuna.load_study(study_name=s.name, storage=storage).get_trials(deepcopy=False))
        sampler = optuna.samplers.TPESampler(seed=zlib.crc32(f"{s.name}/{n_trials}/{config.seed}".encode()),
                                             constant_liar=True)
        searchers[s.name] = StudySearch(name=s.name, space=_space(s.family, s.budget, config), storage=storage,
                                        sampler=sampler, constants=_constants(s.family, s.budget, config),
                                        progress=progress)
    searcher = MultiStudySearcher(searchers, {s.name: s.remaining for s in todo})
    searcher_total = sum(s.remaining for s in todo)
    r = config.resources
    resources = {"cpu": r.cpus_per_trial, "gpu": r.gpus_per_trial}
    with tempfile.TemporaryDirectory(prefix="equiscale-tune-") as workdir:
        tuner = tune.Tuner(
            tune.with_resources(tune.with_parameters(trainable, dataset=dataset), resources),
            tune_config=tune.TuneConfig(search_alg=searcher, num_samples=searcher_total,
                                        max_concurrent_trials=_concurrency(config), reuse_actors=True),
            run_config=tune.RunConfig(name="equiscale", storage_path=workdir, verbose=0,
                                      failure_config=tune.FailureConfig(max_failures=r.max_failures)),
        )
        results = tuner.fit()
    if results.num_terminated + results.num_errors < searcher_total:
        raise KeyboardInterrupt("the Tune run stopped before all its trials ended")  # e.g. Ctrl-C


def run_studies(config: StudyConfig, *, storage, states: list[StudyState], dataset,
                progress: Progress | None = None) -> list[StudyState]:
    """Run every prepared study until each has its target COMPLETE trials (or the rounds run out).

    Ray must already be initialised (`start_ray`); `states` come from `prepare_studies`. Returns the final states.
    """
    progress = progress or Progress()
    for s in states:
        progress.add_study(s.name, complete=s.complete, target=s.target, best=_best_value(storage, s.name))
        if s.stale_failed:
            progress.message(f"{s.name}: {s.stale_failed} unfinished trial(s) of an earlier run marked FAIL")
    for _ in range(MAX_ROUNDS):
        if all(s.remaining == 0 for s in states):
            break
        before = sum(s.complete for s in states)
        run_round(config, storage, states, dataset, progress)
        states = prepare_studies(storage, config, dataset.key)
        if sum(s.complete for s in states) == before:
            break  # no progress: another round would fail the same way
    return states


def _best_value(storage, name: str) -> float | None:
    import optuna

    trials = optuna.load_study(study_name=name, storage=storage).get_trials(
        deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    return min((t.value for t in trials), default=None)
