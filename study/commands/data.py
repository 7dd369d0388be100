"""`equiscale data`: generate (or load from the cache) a study's rigid-body dataset and print its statistics.

With CONFIG it is the dataset that `equiscale run CONFIG` trains on (its `[data]` section, split fractions
included: they enter the cache key), so a long study can simulate its data ahead of the measured run;
without CONFIG, the embedded default study's. Flags override single settings.
"""

from __future__ import annotations

import argparse
import dataclasses

from study.benchmark import BenchmarkConfig, load_dataset
from study.benchmark.dataset import describe
from study.config import load_config
from study.errors import ConfigError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", nargs="?",
                        help="study TOML whose [data] section to use (default: the embedded default study)")
    parser.add_argument("--scenes", type=int, default=None, metavar="N",
                        help="scenes in all splits together (default: the study's)")
    parser.add_argument("--bodies", type=int, default=None, metavar="K",
                        help="rigid bodies per scene (default: the study's)")
    parser.add_argument("--seed", type=int, default=None, metavar="S", help="master seed (default: the study's)")
    parser.add_argument("--horizon", type=float, default=None, metavar="SECONDS",
                        help=f"simulated time until the targets (default {BenchmarkConfig().horizon}, as every study)")
    parser.add_argument("--cache-dir", default=None, metavar="DIR",
                        help="cache directory (default $EQUISCALE_CACHE_DIR or ~/.cache/equiscale)")
    parser.add_argument("--threads", type=int, default=None, metavar="T",
                        help="simulation threads (default: all available cores; does not change the data)")


def main(args: argparse.Namespace) -> int:
    if args.threads is not None and args.threads < 1:
        raise ConfigError(f"threads must be >= 1, got {args.threads}")
    study = load_config(args.config)
    if not hasattr(study.data, "benchmark"):
        raise ConfigError(f"equiscale data simulates the rigid-body task's dataset; task {study.task!r} makes its "
                          f"own data when a run loads it")
    config = study.data.benchmark()
    overrides = {name: getattr(args, name) for name in ("scenes", "bodies", "seed", "horizon")
                 if getattr(args, name) is not None}
    config = dataclasses.replace(config, **overrides)  # BenchmarkConfig validates again: one-line errors
    dataset = load_dataset(config, cache_dir=args.cache_dir, progress=True, threads=args.threads)
    describe(dataset)
    return 0
