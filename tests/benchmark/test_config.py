"""BenchmarkConfig: validation names the parameter; the key changes with every setting."""

import dataclasses

import numpy as np
import pytest

from study.benchmark.config import BenchmarkConfig
from study.errors import ConfigError


@pytest.mark.parametrize("settings, name", [
    ({"bodies": 0}, "bodies"), ({"bodies": -3}, "bodies"), ({"scenes": 0}, "scenes"),
    ({"scenes": -5}, "scenes"), ({"horizon": -0.1}, "horizon"), ({"horizon": 0.0}, "horizon"),
    ({"horizon": float("nan")}, "horizon"), ({"dt": 0}, "dt"), ({"seed": -1}, "seed"),
    ({"scenes": 2.5}, "scenes"), ({"bodies": True}, "bodies"), ({"val_fraction": 1.0}, "val_fraction"),
    ({"horizon": 0.0001}, "horizon"), ({"scenes": 2, "val_fraction": 0.5, "test_fraction": 0.5}, "training"),
])
def test_invalid_settings_name_the_parameter(settings, name):
    with pytest.raises(ConfigError, match=name):
        BenchmarkConfig(**settings)


def test_unknown_setting_is_a_config_error():
    with pytest.raises(ConfigError, match="nonsense"):
        BenchmarkConfig().replace(nonsense=1)


def test_numpy_integers_are_accepted_and_normalised():
    config = BenchmarkConfig(scenes=np.int64(100), bodies=np.int32(3), horizon=1)
    assert type(config.scenes) is int and type(config.bodies) is int and config.horizon == 1.0
    assert config.key == BenchmarkConfig(scenes=100, bodies=3, horizon=1.0).key


def test_key_depends_on_every_setting():
    base = BenchmarkConfig()
    changed = {"scenes": 11, "bodies": 5, "seed": 1, "horizon": 0.4, "dt": 0.001,
               "val_fraction": 0.2, "test_fraction": 0.05}
    assert set(changed) == {f.name for f in dataclasses.fields(base)}
    keys = {base.key} | {base.replace(**{name: value}).key for name, value in changed.items()}
    assert len(keys) == len(changed) + 1
    assert base.key == BenchmarkConfig().key


def test_split_sizes_cover_all_scenes():
    config = BenchmarkConfig(scenes=1003, val_fraction=0.1, test_fraction=0.15)
    train, val, test = config.split_sizes()
    assert (val, test) == (100, 150) and train + val + test == 1003
    assert config.steps == round(config.horizon / config.dt)
