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
    """

    def after_trial(self, study, trial, state, values) -> None:
        return None

    def _get_unvisited_grid_ids(self, study: optuna.Study) -> list[int]:
        visited, running = set(), set()
        for t in study._storage.get_all_trials(study._study_id, deepcopy=False):
            if "grid_id" not in t.system_attrs or not self._same_search_space(t.system_attrs["search_space"]):
                continue
            if t.state == TrialState.COMPLETE:
                visited.add(t.system_attrs["grid_id"])
            elif t.state == TrialState.RUNNING:
                running.add(t.system_attrs["grid_id"])
        unvisited = set(range(self._n_min_trials)) - visited - running
        return sorted(unvisited or set(range(self._n_min_trials)) - visited)
