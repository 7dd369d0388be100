"""Bytes per scene, and the memory check that refuses a dataset before anything is simulated or stored."""

import hashlib

import numpy as np
import pytest

from study.benchmark import BenchmarkConfig, bytes_per_scene, check_fits_memory, dataset_bytes, load_dataset
from study.benchmark.cache import _digest
from study.benchmark.generate import generate
from study.benchmark.memory import available_memory
from study.errors import ConfigError


def test_bytes_per_scene_is_what_generation_allocates():
    config = BenchmarkConfig(scenes=7, bodies=3, horizon=0.02)
    out = generate(config, threads=1)
    allocated = sum(a.nbytes for a in out.arrays.values()) + out.contact.nbytes
    assert all(a.dtype == np.float32 for a in out.arrays.values())
    assert allocated == dataset_bytes(config) == 7 * bytes_per_scene(3)
    assert bytes_per_scene(4) == 705


def test_check_refuses_what_does_not_fit_with_one_line_naming_the_size():
    config = BenchmarkConfig(scenes=500_000)
    check_fits_memory(config, available=2 * dataset_bytes(config))
    with pytest.raises(ConfigError) as info:
        check_fits_memory(config, available=2 * dataset_bytes(config) - 1)
    message = str(info.value)
    assert "\n" not in message and "scenes=500000" in message and "705 bytes/scene" in message
    assert "use at most 499999 scenes" in message


def test_the_machine_reports_its_memory():
    assert available_memory() is None or available_memory() > 0


def test_load_refuses_a_dataset_larger_than_memory_before_touching_the_cache(tmp_path):
    with pytest.raises(ConfigError, match="does not fit in memory"):
        load_dataset(scenes=10**10, cache_dir=tmp_path / "cache")
    assert not (tmp_path / "cache").exists()


def test_streamed_digest_equals_the_digest_of_the_bytes():
    array = np.random.default_rng(0).standard_normal((3, 5, 4)).astype(np.float32)
    assert _digest(array) == hashlib.sha256(array.tobytes()).hexdigest()
    strided = array[:, ::2]
    assert _digest(strided) == hashlib.sha256(np.ascontiguousarray(strided).tobytes()).hexdigest()
