"""run_study writes nothing when Ray cannot be started or reached (the studies are created after Ray is up)."""

from __future__ import annotations

import optuna
import pytest

import study.pipeline
from study.errors import EquiscaleError
from study.pipeline import run_study
from tests.tiny import tiny_config


def test_a_run_whose_ray_fails_to_start_creates_no_study_and_changes_none(tmp_path, monkeypatch):
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    url = f"sqlite:///{tmp_path / 's.db'}"
    config = tiny_config(url, families=("transformer",), trials=1)
    kept = optuna.create_study(storage=url, study_name="transformer/1e+09")
    for key, value in {"family": "transformer", "budget": 1e9, "batch_size": 16, "target_trials": 1,
                       "dataset_key": config.data.benchmark().key}.items():
        kept.set_user_attr(key, value)
    before = (tmp_path / "s.db").read_bytes()

    def no_ray(address):
        raise ConnectionError("GCS did not answer")

    monkeypatch.setattr(study.pipeline, "start_ray", no_ray)
    with pytest.raises(EquiscaleError, match="cannot start/connect Ray: GCS did not answer"):
        run_study(config, cache_dir=tmp_path / "cache")
    assert (tmp_path / "s.db").read_bytes() == before
    assert [s.study_name for s in optuna.get_all_study_summaries(url)] == ["transformer/1e+09"]
