"""`load_dataset`: the benchmark's splits as tensors, generated once and then served from the cache."""

from __future__ import annotations

import os
import sys

import numpy as np
import torch

from study.benchmark import cache
from study.benchmark.config import BenchmarkConfig
from study.benchmark.format import ARRAYS, Dataset, Split
from study.benchmark.generate import generate
from study.benchmark.memory import check_fits_memory


def load_dataset(
    config: BenchmarkConfig | None = None,
    *,
    cache_dir: str | os.PathLike | None = None,
    progress: bool = False,
    threads: int | None = None,
    **settings,
) -> Dataset:
    """The dataset of `config` (defaults, changed by keyword `settings` such as scenes=, bodies=, seed=).

    Served from `cache_dir` (default `$EQUISCALE_CACHE_DIR` or ~/.cache/equiscale) when present and
    intact; otherwise generated (progress bar on stderr when `progress`) and stored atomically.
    Raises ConfigError for invalid settings or a dataset that does not fit in memory (checked before
    anything is simulated, read or stored) and CacheError for an unusable cache."""
    config = (config or BenchmarkConfig()).replace(**settings) if settings else (config or BenchmarkConfig())
    check_fits_memory(config)
    path = cache.cache_path(config, cache_dir)
    from_cache = path.exists()
    if from_cache:
        arrays, stats = cache.load(path, config)
    else:
        cache.ensure_writable(path)
        generated = generate(config, threads=threads, progress=progress)
        arrays, stats = dict(generated.arrays, contact=generated.contact), generated.stats
        cache.save(path, config, arrays, stats)
    return _split(config, arrays, key=config.key, path=str(path), from_cache=from_cache, stats=stats)


def _split(config: BenchmarkConfig, arrays: dict[str, np.ndarray], **info) -> Dataset:
    """Contiguous train/val/test splits (scenes are i.i.d., so contiguous blocks are random splits)."""
    train, val, _ = config.split_sizes()
    bounds = [(0, train), (train, train + val), (train + val, config.scenes)]
    tensors = {name: torch.from_numpy(np.ascontiguousarray(arrays[name])) for name in ARRAYS}
    splits = [Split(*(tensors[name][lo:hi] for name in ARRAYS)) for lo, hi in bounds]
    return Dataset(*splits, **info)


def describe(dataset: Dataset, *, file=None) -> None:
    """Print where the dataset is and its statistics (used by `equiscale data`)."""
    file = file or sys.stdout
    stats = dataset.stats
    source = "loaded from cache" if dataset.from_cache else (
        f"generated in {stats.get('generation_seconds', float('nan')):.1f} s "
        f"({stats.get('scenes_per_second', float('nan')):.0f} scenes/s on {stats.get('threads', '?')} threads)")
    print(f"dataset {dataset.key}: {source}", file=file)
    print(f"  path               {dataset.path}", file=file)
    print(f"  scenes             {stats.get('scenes')} (train {len(dataset.train)}, val {len(dataset.val)}, "
          f"test {len(dataset.test)})", file=file)
    print(f"  bodies x markers   {dataset.train.pos0.shape[1]} x {dataset.train.pos0.shape[2]}", file=file)
    print(f"  with contacts      {100 * stats.get('contact_fraction', float('nan')):.1f}%", file=file)
    print(f"  mean displacement  {stats.get('mean_displacement', float('nan')):.4f} m", file=file)
