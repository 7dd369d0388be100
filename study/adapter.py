"""Every use of Optuna or Ray internals (private attributes, storage calls, environment switches) lives here.

An upgrade of either library should break this file and tests/test_adapter.py, nothing else. Ray is
imported inside functions so that importing equiscale neither starts nor configures Ray.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys

import optuna
from optuna.trial import FrozenTrial, TrialState

from study.schema import FAIL_REASON

# Ray/Tune switches that replace their tables and loggers by our progress lines; set by `start_ray`.
RAY_ENVIRONMENT = {
    "TUNE_DISABLE_AUTO_CALLBACK_LOGGERS": "1",
    "RAY_AIR_NEW_OUTPUT": "0",
    "RAY_DEDUP_LOGS": "0",
    "TUNE_MAX_PENDING_TRIALS_PG": "1",
    "RAY_TRAIN_V2_ENABLED": "0",
    "RAY_worker_niceness": "0",  # Ray nices workers by default: trials would lose to any other load
}


def fail_trial(study: optuna.Study, trial: FrozenTrial, reason: str) -> None:
    """Mark a RUNNING trial of `study` FAIL with `reason`, from any process (Optuna has no public call for
    finishing a trial it did not hand out in this process)."""
    study._storage.set_trial_user_attr(trial._trial_id, FAIL_REASON, reason)
    study._storage.set_trial_state_values(trial._trial_id, state=TrialState.FAIL)


def configure_ray_environment() -> None:
    """Set the Ray/Tune environment switches (kept where the user already set them)."""
    for key, value in RAY_ENVIRONMENT.items():
        os.environ.setdefault(key, value)


def start_ray(address: str | None) -> None:
    """Connect to a cluster (`address`) or start a private local one; Ray's own logging kept quiet.

    Raises the Ray/OS error as it comes; the caller turns it into a one-line message.
    """
    configure_ray_environment()
    import ray

    kwargs = dict(log_to_driver=False, logging_level=logging.ERROR, configure_logging=True)
    sigterm = signal.getsignal(signal.SIGTERM)
    if address:
        ray.init(address=address, **kwargs)
    else:
        ray.init(address="local", include_dashboard=False, **kwargs)
        start_reaper()
    # Ray's core worker replaces the driver's SIGTERM handler with one that dumps a C++ stack and aborts;
    # give the caller's handler back (the CLI turns SIGTERM into a clean stop).
    if callable(sigterm):
        signal.signal(signal.SIGTERM, sigterm)
    for name in ("ray", "ray.tune", "ray.train", "ray.air"):
        logging.getLogger(name).setLevel(logging.CRITICAL)


def stop_ray() -> None:
    """Disconnect from Ray (and stop a private local cluster)."""
    import ray

    ray.shutdown()


def start_reaper() -> None:
    """Watch this driver from a separate process that kills its local Ray processes if it dies unannounced
    (Ray's own processes notice a dead driver only after 35-65 s)."""
    subprocess.Popen([sys.executable, "-m", "study.reaper", str(os.getpid())], start_new_session=True,
                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def optuna_search_base():
    """Ray's `OptunaSearch` with small accessors for the internals our subclass needs.

    `study_trial(trial_id)` is the live `optuna.Trial` of a Tune trial, `ends(trial_id)` tells whether it
    was already told, `tell(...)` finishes it once.
    """
    configure_ray_environment()
    from ray.tune.search.optuna import OptunaSearch

    class AdaptedOptunaSearch(OptunaSearch):
        def study_trial(self, trial_id: str) -> optuna.Trial | None:
            return self._ot_trials.get(trial_id)

        def ended(self, trial_id: str) -> bool:
            return trial_id in self._completed_trials

        def tell(self, trial_id: str, *, value: float | None, state: TrialState) -> None:
            trial = self._ot_trials[trial_id]
            if value is None:
                self._ot_study.tell(trial, state=state)
            else:
                self._ot_study.tell(trial, value, state=state)
            self._completed_trials.add(trial_id)

    return AdaptedOptunaSearch


class GridSampler(optuna.samplers.GridSampler):
    """Optuna's GridSampler for our resume model.

    - It calls `study.stop()` after the last grid point, which raises outside `study.optimize`; the
      driver counts trials itself, so that stop is dropped.
    - It counts a FAIL trial's point as visited, so a point whose trial failed (a killed driver, a
      diverged run) would never be trained; here only COMPLETE points are visited and a failed point
      is handed out again.
    - It hands trial k the k-th point of its shuffled grid unseen, and knows points by shuffled id; a
      resumed run's sampler (another seed) then retrained done points. Here a new trial gets the first
      point no COMPLETE or RUNNING trial has, each trial's point found by its parameters.
    """

    def after_trial(self, study, trial, state, values) -> None:
        return None

    def before_trial(self, study, trial) -> None:
        """The first unvisited point of the (seed-shuffled) grid. Optuna's own hands trial number k the k-th
        point without looking, so a resumed run, whose sampler has another seed, retrained visited points."""
        if "grid_id" in trial.system_attrs or "fixed_params" in trial.system_attrs:
            return
        grid_id = (self._get_unvisited_grid_ids(study) or [0])[0]   # all done: Optuna re-evaluates too
        study._storage.set_trial_system_attr(trial._trial_id, "search_space", self._search_space)
        study._storage.set_trial_system_attr(trial._trial_id, "grid_id", grid_id)

    def _get_unvisited_grid_ids(self, study: optuna.Study) -> list[int]:
        visited, running = set(), set()
        for t in study._storage.get_all_trials(study._study_id, deepcopy=False):
            if "grid_id" not in t.system_attrs or not self._same_search_space(t.system_attrs["search_space"]):
                continue
            grid_id = self._grid_id_of(t)
            if grid_id is None:
                continue
            if t.state == TrialState.COMPLETE:
                visited.add(grid_id)
            elif t.state == TrialState.RUNNING:
                running.add(grid_id)
        unvisited = set(range(self._n_min_trials)) - visited - running
        return sorted(unvisited or set(range(self._n_min_trials)) - visited)

    def _grid_id_of(self, trial) -> int | None:
        """This sampler's id of the point a trial trained, found by its parameters: the grid is shuffled by the
        seed, so the `grid_id` stored by another sampler instance (an earlier run, another driver) names
        another point. A trial without all its parameters yet (just started) keeps its stored id."""
        if not all(name in trial.params for name in self._param_names):
            return trial.system_attrs["grid_id"]
        point = [trial.params[name] for name in self._param_names]
        return next((i for i, grid in enumerate(self._all_grids)
                     if all(self._grid_value_equal(a, b) for a, b in zip(grid, point))), None)
