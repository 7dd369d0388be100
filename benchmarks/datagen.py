"""Scenes simulated per second at the default benchmark settings, on all cores and on one.

Run: .venv/bin/python benchmarks/datagen.py [--scenes N] [--project 524288]
Prints the all-core throughput (the figure the issue asks for, goal >= 1,000 scenes/s on 2 cores),
the bytes per scene and the projected time and memory for a compute-study training set (--project,
default 2^19 scenes; measure at 2^14, do not generate the big one in the foreground),
the one-thread throughput on the same scenes and their ratio, plus CPU time per scene so that a busy
machine (other processes taking cores) is visible: wall-clock figures only mean something when
`cpu use` is close to the thread count.
"""

from __future__ import annotations

import argparse
import resource
import time

from study.benchmark.config import BenchmarkConfig
from study.benchmark.generate import available_threads, generate
from study.benchmark.memory import available_memory, bytes_per_scene, dataset_bytes
from study.cli import run_script


def measure(config: BenchmarkConfig, threads: int) -> dict[str, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    out = generate(config, threads=threads)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return {"scenes_per_s": config.scenes / wall, "cpu_use": cpu / wall,
            "cpu_ms_per_scene": 1e3 * cpu / config.scenes, "contact": out.stats["contact_fraction"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    defaults = BenchmarkConfig()
    parser.add_argument("--scenes", type=int, default=2**14)
    parser.add_argument("--project", type=int, default=2**19, help="scenes to project time and memory for")
    args = parser.parse_args()
    config = defaults.replace(scenes=args.scenes)
    threads = available_threads()
    print(f"settings: {config.scenes} scenes, K={config.bodies}, horizon {config.horizon} s, "
          f"dt {config.dt} s ({config.steps} steps); {threads} cores available")
    generate(config.replace(scenes=64), threads=threads)   # warm-up: imports, thread pool
    every = measure(config, threads)
    one = measure(config.replace(scenes=max(256, config.scenes // 4)), 1)
    for label, r, n in (("all cores", every, threads), ("one thread", one, 1)):
        print(f"{label:10s} ({n} threads): {r['scenes_per_s']:8.0f} scenes/s   cpu use {r['cpu_use']:.2f} "
              f"cores   {r['cpu_ms_per_scene']:.3f} cpu-ms/scene   contacts {100 * r['contact']:.1f}%")
    print(f"speed-up all cores / one thread: {every['scenes_per_s'] / one['scenes_per_s']:.2f}x "
          f"(ideal {threads}x); per-core efficiency "
          f"{one['cpu_ms_per_scene'] / every['cpu_ms_per_scene']:.2f} (cpu-ms per scene, one / all)")
    big = config.replace(scenes=args.project)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024   # Linux: KiB
    avail = available_memory()
    print(f"storage: {bytes_per_scene(config.bodies)} bytes/scene (float32 arrays + contact flag); "
          f"{config.scenes} scenes = {dataset_bytes(config) / 2**20:.1f} MiB, peak RSS of this process "
          f"{rss / 2**20:.0f} MiB")
    print(f"projected for {big.scenes} scenes: {big.scenes / every['scenes_per_s'] / 60:.1f} min on {threads} "
          f"cores, {dataset_bytes(big) / 2**20:.0f} MiB in memory and on disk "
          f"(available now: {'unknown' if avail is None else f'{avail / 2**30:.1f} GiB'})")


if __name__ == "__main__":
    raise SystemExit(run_script(main))
