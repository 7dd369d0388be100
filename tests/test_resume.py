"""Resuming a study: the settings check refuses a changed run before anything is written; stale trials fail."""

from __future__ import annotations

import dataclasses

import optuna
import pytest

from study.config import TrainingConfig, load_config, resolve, settings
from study.errors import ConfigError
from study.resume import STALE_REASON, prepare_studies, remaining_trials
from study.storage import open_storage

optuna.logging.set_verbosity(optuna.logging.WARNING)
KEY = "dataset-key"


def _config(url: str, **training):
    """Two small transformer budgets on the dataclass training defaults (one batch size, 32, for both)."""
    config = load_config()
    config = dataclasses.replace(config, families=("transformer",), budgets=(1e10, 2e10), storage=url,
                                 training=TrainingConfig())
    return dataclasses.replace(config, training=dataclasses.replace(config.training, **training))


def _snapshot(url: str) -> dict:
    """Everything stored: per study its attributes and every trial's state, params, values and attributes."""
    return {s.study_name: (s.user_attrs, [(t.state, t.params, t.value, t.user_attrs, t.intermediate_values)
                                          for t in optuna.load_study(study_name=s.study_name, storage=url).trials])
            for s in optuna.get_all_study_summaries(url)}


@pytest.fixture
def stored(tmp_path):
    url = f"sqlite:///{tmp_path / 's.db'}"
    config = _config(url)
    storage = open_storage(url)
    prepare_studies(storage, resolve(config), KEY)
    study = optuna.load_study(study_name="transformer/1e+10", storage=storage)
    trial = study.ask({"lr": optuna.distributions.FloatDistribution(1e-4, 1e-2, log=True)})
    study.tell(trial, 0.1)
    return url, storage, config


@pytest.mark.parametrize("change", [
    {"lr_max": 3e-2}, {"lr_min": 1e-4}, {"weight_decay": 0.1}, {"max_steps": 3000}, {"min_steps": 200},
    {"grad_clip": 0.5}, {"warmup_fraction": 0.1}, {"evals": 7}, {"val_samples": 128}, {"batch_size": 16},
])
def test_a_changed_setting_is_refused_naming_it_and_the_storage_is_unchanged(stored, change):
    url, storage, config = stored
    before = _snapshot(url)
    (key,) = change
    with pytest.raises(ConfigError, match=key):
        prepare_studies(storage, resolve(_config(url, **change)), KEY)
    assert _snapshot(url) == before


def test_another_batch_size_for_one_budget_is_refused(stored):
    url, storage, config = stored
    before = _snapshot(url)
    changed = dataclasses.replace(config, training=dataclasses.replace(config.training, batch_sizes=(16, 32)))
    with pytest.raises(ConfigError, match="transformer/1e\\+10.*batch_size=32.*16"):
        prepare_studies(storage, resolve(changed), KEY)
    assert _snapshot(url) == before


def test_another_dataset_or_seed_is_refused(stored):
    url, storage, config = stored
    before = _snapshot(url)
    with pytest.raises(ConfigError, match="dataset_key"):
        prepare_studies(storage, resolve(config), "other-key")
    with pytest.raises(ConfigError, match="seed"):
        prepare_studies(storage, resolve(dataclasses.replace(config, seed=1)), KEY)
    assert _snapshot(url) == before


def test_the_same_settings_resume_and_count_what_is_there(stored):
    url, storage, config = stored
    states = {s.name: s for s in prepare_studies(storage, resolve(config), KEY)}
    assert states["transformer/1e+10"].complete == 1 and states["transformer/2e+10"].complete == 0
    assert optuna.load_study(study_name="transformer/1e+10", storage=url).user_attrs["settings"] == settings(config)


def test_a_study_stored_before_settings_were_recorded_resumes_and_gains_them(tmp_path):
    url = f"sqlite:///{tmp_path / 'old.db'}"
    config = _config(url)
    storage = open_storage(url)
    study = optuna.create_study(storage=storage, study_name="transformer/1e+10")
    for key, value in {"family": "transformer", "budget": 1e10, "batch_size": 32, "dataset_key": KEY,
                       "target_trials": 6}.items():
        study.set_user_attr(key, value)
    prepare_studies(storage, resolve(config), KEY)
    assert optuna.load_study(study_name="transformer/1e+10", storage=url).user_attrs["settings"] == settings(config)


def test_a_foreign_study_of_the_same_name_is_refused(tmp_path):
    url = f"sqlite:///{tmp_path / 'foreign.db'}"
    optuna.create_study(storage=url, study_name="transformer/1e+10")
    before = _snapshot(url)
    with pytest.raises(ConfigError, match="not made by equiscale"):
        prepare_studies(open_storage(url), resolve(_config(url)), KEY)
    assert _snapshot(url) == before


@pytest.mark.parametrize("sampler, expected", [("grid", 2), ("tpe", 3)])
def test_a_grid_point_trained_twice_counts_once(tmp_path, sampler, expected):
    url = f"sqlite:///{tmp_path / 's.db'}"
    config = dataclasses.replace(_config(url), sampler=sampler)
    storage = open_storage(url)
    prepare_studies(storage, resolve(config), KEY)
    study = optuna.load_study(study_name="transformer/1e+10", storage=storage)
    lr = optuna.distributions.FloatDistribution(1e-4, 1e-2, log=True)
    for value in (1e-3, 1e-3, 2e-3):                                # three trials, two distinct points
        study.add_trial(optuna.trial.create_trial(params={"lr": value}, distributions={"lr": lr}, value=0.2))
    states = {s.name: s for s in prepare_studies(storage, resolve(config), KEY)}
    assert states["transformer/1e+10"].complete == expected
    # what the driver and its cost estimate count as still to do: the same
    assert remaining_trials(url, resolve(config))["transformer/1e+10"] == config.trials - expected


def test_running_trials_of_a_dead_driver_are_failed_with_the_reason(stored):
    url, storage, config = stored
    study = optuna.load_study(study_name="transformer/2e+10", storage=storage)
    study.ask()
    states = {s.name: s for s in prepare_studies(storage, resolve(config), KEY)}
    assert states["transformer/2e+10"].stale_failed == 1
    (trial,) = optuna.load_study(study_name="transformer/2e+10", storage=url).trials
    assert trial.state == optuna.trial.TrialState.FAIL and trial.user_attrs["fail_reason"] == STALE_REASON


def _isoflop(url: str, **settings_):
    from search_spaces.refine import RefineSettings
    return dataclasses.replace(_config(url), sampler="isoflop", sampler_settings=RefineSettings(**{"cap": 8, **settings_}))


@pytest.mark.parametrize("change, allowed", [
    ({"cap": 12}, True), ({"seeds": 4, "max_points": 12}, True), ({"lr_extend": 3}, True),
    ({"cap": 12, "refine_decades": 0.1}, False), ({"seeds": 2}, False), ({"start": 6}, False), ({"flank": 2}, False),
    ({"replicate_best": True}, True),       # stored without it (at its default, false): false -> true raises it
])
def test_only_a_samplers_raisable_settings_may_change_on_resume_and_only_upwards(tmp_path, change, allowed):
    url = f"sqlite:///{tmp_path / 's.db'}"
    storage = open_storage(url)
    prepare_studies(storage, resolve(_isoflop(url)), KEY)
    before = _snapshot(url)
    changed = resolve(_isoflop(url, **change))
    if allowed:
        prepare_studies(storage, changed, KEY)
        stored = optuna.load_study(study_name="transformer/1e+10", storage=url).user_attrs["settings"]
        assert {k: stored["sampler_settings"][k] for k in change} == change
    else:
        with pytest.raises(ConfigError, match="sampler_settings.*only max_points, lr_extend, seeds, cap, replicate_best may be raised"):
            prepare_studies(storage, changed, KEY)
        assert _snapshot(url) == before


def test_a_raised_flag_is_never_lowered_on_resume(tmp_path):
    url = f"sqlite:///{tmp_path / 's.db'}"
    storage = open_storage(url)
    prepare_studies(storage, resolve(_isoflop(url, replicate_best=True)), KEY)
    before = _snapshot(url)
    with pytest.raises(ConfigError, match="replicate_best"):
        prepare_studies(storage, resolve(_isoflop(url)), KEY)
    assert _snapshot(url) == before


def test_sampler_settings_added_later_are_stored_only_when_set_so_older_studies_resume():
    from search_spaces.refine import RefineSettings
    from study.config import recorded

    assert not {"flank", "replicate", "replicate_best"} & set(recorded(RefineSettings()))
    assert recorded(RefineSettings(replicate_best=True))["replicate_best"] is True
    assert recorded(RefineSettings(flank=2))["flank"] == 2 and "flank_decades" not in recorded(RefineSettings(flank=2))
    assert set(recorded(RefineSettings(cap=8))) == {f.name for f in dataclasses.fields(RefineSettings)
                                                    if f.name not in ("flank", "flank_decades", "replicate",
                                                                      "replicate_best")}
