"""Generate the benchmark arrays for a `BenchmarkConfig`: sample scenes in seeded blocks, simulate, collect.

Scenes are drawn in blocks of BLOCK scenes, block b from `SeedSequence(seed, spawn_key=(b,))`, and
every rollout starts from a fully specified state, so the arrays depend on the settings alone: not on
the number of threads, and scene i is the same for any total number of scenes.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass

import numpy as np

from study.benchmark.config import BenchmarkConfig
from study.benchmark.scenes import Scenes, markers, props, sample_scenes
from study.benchmark.simulate import Simulator

BLOCK = 256
SIMULATE_AT_ONCE = 64 * BLOCK   # multiple of BLOCK


@dataclass(frozen=True)
class Generated:
    """All S scenes: float32 arrays in the public format, contact flags (S,) and summary statistics."""

    arrays: dict[str, np.ndarray]   # pos0, vel0, props, posT
    contact: np.ndarray             # (S,) bool: at least one body-body contact during the horizon
    stats: dict[str, float]


def available_threads() -> int:
    """Cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def block_scenes(config: BenchmarkConfig, block: int) -> Scenes:
    """The BLOCK scenes of block `block` (always drawn whole, so a shorter dataset is a prefix)."""
    rng = np.random.default_rng(np.random.SeedSequence(config.seed, spawn_key=(block,)))
    return sample_scenes(rng, BLOCK, config.bodies)


def generate(config: BenchmarkConfig, *, threads: int | None = None, progress: bool = False) -> Generated:
    """Sample and simulate every scene of `config`; a tqdm bar on stderr when `progress`."""
    threads = threads or available_threads()
    S, K = config.scenes, config.bodies
    out = {name: np.empty((S, K, 4, 3), np.float32) for name in ("pos0", "vel0", "posT")}
    out["props"] = np.empty((S, K, 8), np.float32)
    contact = np.empty(S, dtype=bool)
    started = time.perf_counter()
    simulator = Simulator(K, dt=config.dt, steps=config.steps, threads=threads)
    bar = _bar(S, progress)
    try:
        for lo in range(0, S, SIMULATE_AT_ONCE):   # bounded memory for huge datasets
            hi = min(lo + SIMULATE_AT_ONCE, S)
            scenes = _scenes(config, lo, hi)
            outcome = simulator.run(scenes, on_chunk=bar.update)
            out["pos0"][lo:hi], out["vel0"][lo:hi] = markers(scenes)
            out["props"][lo:hi] = props(scenes)
            out["posT"][lo:hi] = outcome.markers(scenes.size)
            contact[lo:hi] = outcome.contact
    finally:
        bar.close()
        simulator.close()
    seconds = time.perf_counter() - started
    return Generated(out, contact, summarize(out, contact) | {
        "generation_seconds": seconds, "scenes_per_second": S / seconds, "threads": threads})


def summarize(arrays: dict[str, np.ndarray], contact: np.ndarray) -> dict[str, float]:
    """Scenes, fraction with contacts, mean marker displacement over the horizon (metres)."""
    total, count = 0.0, 0
    for lo in range(0, len(contact), SIMULATE_AT_ONCE):   # in blocks: no float64 copy of the whole dataset
        part = arrays["posT"][lo:lo + SIMULATE_AT_ONCE].astype(np.float64) - arrays["pos0"][lo:lo + SIMULATE_AT_ONCE]
        displacement = np.linalg.norm(part, axis=-1)
        total, count = total + float(displacement.sum()), count + displacement.size
    return {"scenes": int(len(contact)), "contact_fraction": float(contact.mean()),
            "mean_displacement": total / max(1, count)}


def first_scenes(config: BenchmarkConfig, n: int) -> Scenes:
    """Scenes 0..n-1 of the dataset of `config` (before simulation)."""
    return _scenes(config, 0, n)


def _scenes(config: BenchmarkConfig, lo: int, hi: int) -> Scenes:
    """Scenes lo..hi-1 (lo a multiple of BLOCK), drawn block by block."""
    assert lo % BLOCK == 0
    blocks = [block_scenes(config, b) for b in range(lo // BLOCK, -(-hi // BLOCK))]
    return Scenes(*(np.concatenate([getattr(b, f) for b in blocks])[: hi - lo] for f in Scenes.__dataclass_fields__))


def _bar(total: int, enabled: bool):
    from tqdm import tqdm
    return tqdm(total=total, unit="scene", desc="simulating", file=sys.stderr, disable=not enabled,
                dynamic_ncols=True)
