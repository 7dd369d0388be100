"""load_dataset and its cache: served from disk the second time, atomic writes, corruption detected."""

import os
from pathlib import Path

import numpy as np
import pytest
import torch

from study.benchmark import BenchmarkConfig, load_dataset
from study.benchmark import dataset as dataset_module
from study.benchmark.cache import CacheError, cache_path, default_cache_dir
from study.benchmark.format import ARRAYS

SMALL = dict(scenes=40, bodies=3, seed=2, horizon=0.1)


def _no_generation(*args, **kwargs):
    raise AssertionError("generated although the cache should have served it")


def test_second_call_is_served_from_cache(tmp_path, monkeypatch):
    first = load_dataset(**SMALL, cache_dir=tmp_path)
    assert not first.from_cache and Path(first.path).is_file()
    monkeypatch.setattr(dataset_module, "generate", _no_generation)
    second = load_dataset(**SMALL, cache_dir=tmp_path)
    assert second.from_cache and second.key == first.key and second.path == first.path
    for split in ("train", "val", "test"):
        for name in ARRAYS:
            a, b = getattr(getattr(first, split), name), getattr(getattr(second, split), name)
            assert a.dtype == torch.float32 and a.numpy().tobytes() == b.numpy().tobytes()
    assert second.stats == first.stats
    assert [p.name for p in Path(first.path).parent.iterdir()] == [Path(first.path).name]  # no temp files


def test_independent_caches_give_identical_bytes(tmp_path):
    a = load_dataset(**SMALL, cache_dir=tmp_path / "a")
    b = load_dataset(BenchmarkConfig(**SMALL), cache_dir=tmp_path / "b")
    with np.load(a.path) as fa, np.load(b.path) as fb:
        for name in (*ARRAYS, "contact"):
            assert fa[name].tobytes() == fb[name].tobytes(), name


def test_splits_partition_the_scenes(tmp_path):
    ds = load_dataset(**SMALL, cache_dir=tmp_path)
    train, val, test = BenchmarkConfig(**SMALL).split_sizes()
    assert (len(ds.train), len(ds.val), len(ds.test)) == (train, val, test)
    everything = torch.cat([ds.train.pos0, ds.val.pos0, ds.test.pos0])
    assert len(torch.unique(everything.reshape(len(everything), -1), dim=0)) == SMALL["scenes"]
    assert ds.train.pos0.shape[1:] == (3, 4, 3) and ds.train.props.shape[1:] == (3, 8)


def test_default_cache_dir_follows_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("EQUISCALE_CACHE_DIR", str(tmp_path / "env"))
    assert default_cache_dir() == tmp_path / "env"
    ds = load_dataset(**SMALL)
    assert Path(ds.path).is_relative_to(tmp_path / "env")
    monkeypatch.delenv("EQUISCALE_CACHE_DIR")
    assert default_cache_dir() == Path.home() / ".cache" / "equiscale"


def _corrupt_truncate(path):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _corrupt_flip(path):
    data = bytearray(path.read_bytes())
    data[len(data) // 3] ^= 0xFF   # inside the pos0/vel0 payload
    path.write_bytes(bytes(data))


def _corrupt_replace_array(path):
    with np.load(path) as npz:
        arrays = {name: npz[name] for name in npz.files}
    arrays["posT"] = arrays["posT"] + np.float32(1.0)   # valid file, wrong content
    with open(path, "wb") as handle:
        np.savez(handle, **arrays)


def _corrupt_shape(path):
    with np.load(path) as npz:
        arrays = {name: npz[name] for name in npz.files}
    arrays["props"] = arrays["props"][:, :, :5]
    with open(path, "wb") as handle:
        np.savez(handle, **arrays)


def _corrupt_empty(path):
    path.write_bytes(b"")


@pytest.mark.parametrize("corrupt", [_corrupt_truncate, _corrupt_flip, _corrupt_replace_array,
                                     _corrupt_shape, _corrupt_empty])
def test_corrupted_cache_is_reported_and_kept(tmp_path, monkeypatch, corrupt):
    path = Path(load_dataset(**SMALL, cache_dir=tmp_path).path)
    corrupt(path)
    before = path.read_bytes()
    monkeypatch.setattr(dataset_module, "generate", _no_generation)
    with pytest.raises(CacheError, match="corrupted"):
        load_dataset(**SMALL, cache_dir=tmp_path)
    assert path.read_bytes() == before   # never overwritten or deleted behind the user's back


def test_unwritable_cache_dir_fails_before_simulating(tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    monkeypatch.setattr(dataset_module, "generate", _no_generation)
    with pytest.raises(CacheError, match="not writable"):
        load_dataset(**SMALL, cache_dir=blocker / "cache")


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write into read-only directories")
def test_read_only_cache_dir(tmp_path, monkeypatch):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        with pytest.raises(CacheError, match="not writable"):
            load_dataset(**SMALL, cache_dir=ro)
    finally:
        ro.chmod(0o700)


def test_cache_path_is_keyed_by_settings(tmp_path):
    a = cache_path(BenchmarkConfig(**SMALL), tmp_path)
    b = cache_path(BenchmarkConfig(**dict(SMALL, seed=3)), tmp_path)
    assert a != b and a.parent == b.parent == tmp_path / "benchmark"
