"""`equiscale data`: generate (or load from the cache) the rigid-body dataset and print its statistics."""

from __future__ import annotations

import argparse

from study.benchmark import BenchmarkConfig, load_dataset
from study.benchmark.dataset import describe
from study.errors import ConfigError

_DEFAULTS = BenchmarkConfig()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--scenes", type=int, default=_DEFAULTS.scenes, metavar="N",
                        help=f"scenes in all splits together (default {_DEFAULTS.scenes})")
    parser.add_argument("--bodies", type=int, default=_DEFAULTS.bodies, metavar="K",
                        help=f"rigid bodies per scene (default {_DEFAULTS.bodies})")
    parser.add_argument("--seed", type=int, default=_DEFAULTS.seed, metavar="S", help="master seed (default 0)")
    parser.add_argument("--horizon", type=float, default=_DEFAULTS.horizon, metavar="SECONDS",
                        help=f"simulated time until the targets (default {_DEFAULTS.horizon})")
    parser.add_argument("--cache-dir", default=None, metavar="DIR",
                        help="cache directory (default $EQUISCALE_CACHE_DIR or ~/.cache/equiscale)")
    parser.add_argument("--threads", type=int, default=None, metavar="T",
                        help="simulation threads (default: all available cores; does not change the data)")


def main(args: argparse.Namespace) -> int:
    if args.threads is not None and args.threads < 1:
        raise ConfigError(f"threads must be >= 1, got {args.threads}")
    config = BenchmarkConfig(scenes=args.scenes, bodies=args.bodies, seed=args.seed, horizon=args.horizon)
    dataset = load_dataset(config, cache_dir=args.cache_dir, progress=True, threads=args.threads)
    describe(dataset)
    return 0
