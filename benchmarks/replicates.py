"""Replicates trained together: samples/s per replicate-equivalent for 1, 2, 4 and 8 stacked replicates, as a ratio
to one replicate trained alone by `study.training.train`, at the smallest, middle and largest shapes of a study file.

    .venv/bin/python benchmarks/replicates.py [--config studies/cpu.toml] [--threads 1] [--seconds 1.5]
        [--replicates 1 2 4 8] [--families transformer gatr] [--vmap]

Shapes: every point of the file's IsoFLOP grids (`study.config.study_spec` + `space.grid`, shapes and batch sizes
as the grid sampler proposes them), per family the smallest, the middle and the largest by training FLOPs per
sample, each at its own budget's batch size. Replicates differ in seed and lr (the grid's lr × 1, 0.8, 1.25, …).

Columns: ms per training step of the group; samples/s of all R replicates together (R × batch per step), so
that "ratio" = that ÷ one replicate alone = replicate-equivalents trained per unit of time relative to training
them one after another ("alone" is `train`; "fold R=1" is the stacked path with one replicate, its overhead).

Timing: each run (alone: `train`; stacked: `study.stacked.train_group`) validates a 16-scene probe after a
warm-up of `--warmup` steps and after the last step (`eval_at`); the time between the two validation reports is
`steps − warmup` training steps (plus one tiny validation), so model building, start-up and final evaluation
are left out. Timed steps are chosen so that one replicate alone takes about `--seconds`. The data are random
tensors of the benchmark's shapes (throughput does not depend on their values). "of peak" divides the
achieved training FLOP/s (`step_flops`, as executed) by the float32 matmul rate measured at the start of this run
with the same threads. `--vmap` adds the torch.func path (`method="vmap"`) beside the default `fold` path where
the family allows it (GATr does not: its custom autograd functions have no vmap rule).
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import sys
import time

import optuna
import torch

from study.benchmark.format import Dataset, Split
from study.cli import run_script
from study.config import load_config, study_spec
from study.estimate import matmul_rate
from study.records import TrialPlan
from study.stacked import train_group
from study.training import train

LR_SPREAD = (1.0, 0.8, 1.25, 0.64, 1.5625, 0.9, 1.1, 0.7)


def grid_points(config, family: str) -> list[tuple[float, dict, object]]:
    """(training FLOPs per sample, shape, proposal) of every grid point of `family` in the file."""
    points = []
    for budget in config.budgets:
        spec = study_spec(config, family, budget)
        grid = spec.space.grid(spec, config.trials)
        for fwd in grid["fwd_flops"]:
            trial = optuna.trial.FixedTrial({"depth": grid["depth"][0], "fwd_flops": fwd, "lr": grid["lr"][0]})
            proposal = spec.space(trial, spec)
            points.append((proposal.step_flops / proposal.batch_size, proposal.shape, proposal, spec))
    return points


def picks(config, family: str) -> list[tuple[str, object, object]]:
    """The smallest, middle and largest grid points of `family` (by training FLOPs per sample)."""
    points = sorted(grid_points(config, family), key=lambda p: (p[0], p[2].batch_size))
    chosen = [("smallest", points[0]), ("middle", points[len(points) // 2]), ("largest", points[-1])]
    return [(name, point[2], point[3]) for name, point in chosen]


def random_dataset(sample: dict, scenes: int, seed: int = 0) -> Dataset:
    g = torch.Generator().manual_seed(seed)
    k, m, p = sample["bodies"], sample["markers"], sample["props"]

    def split(n):
        return Split(torch.randn(n, k, m, 3, generator=g), torch.randn(n, k, m, 3, generator=g),
                     torch.rand(n, k, p, generator=g), torch.randn(n, k, m, 3, generator=g))

    return Dataset(train=split(scenes), val=split(64), test=split(64), key="random")


def base_plan(proposal, spec, *, threads: int, steps: int, warmup: int) -> TrialPlan:
    return TrialPlan(family=spec.family_name, budget=float(spec.budget), shape=dict(proposal.shape), lr=proposal.lr,
                     steps=steps, batch_size=proposal.batch_size, step_flops=proposal.step_flops,
                     forward_flops=proposal.forward_flops, params=proposal.params, seed=0, evals=2, val_samples=16,
                     threads=threads, eval_at=(warmup, steps), model=spec.family, task=spec.task,
                     sample=tuple(sorted(spec.sample.items())))


def timed(run) -> float:
    """Seconds between the first report at the warm-up step and the first at the last step."""
    marks = {}

    def report(*args):
        step = args[-2]
        marks.setdefault(step, time.perf_counter())

    run(report)
    first, last = sorted(marks)
    return marks[last] - marks[first]


def measure(plan: TrialPlan, dataset, replicates: int, method: str | None) -> float:
    """Seconds per training step of `replicates` replicates (alone: `method` None and one replicate)."""
    plans = [dataclasses.replace(plan, seed=1000 + i, lr=plan.lr * LR_SPREAD[i % len(LR_SPREAD)])
             for i in range(replicates)]
    if method is None:
        seconds = timed(lambda report: train(plans[0], dataset, report=report))
    else:
        seconds = timed(lambda report: train_group(plans, dataset, report=report, method=method))
    return seconds / (plan.steps - plan.eval_at[0])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="studies/cpu.toml")
    parser.add_argument("--families", nargs="*", default=None)
    parser.add_argument("--replicates", nargs="*", type=int, default=[1, 2, 4, 8])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=1.5, help="target timed seconds of one replicate alone")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--min-steps", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=2, help="interleaved repeats; the best time counts")
    parser.add_argument("--vmap", action="store_true", help="also time the torch.func vmap path")
    parser.add_argument("--sizes", nargs="*", default=["smallest", "middle", "largest"])
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    config = load_config(args.config)
    families = args.families or list(config.families)
    peak = matmul_rate(threads=args.threads)
    print(f"{args.config}: torch {torch.__version__}, {args.threads} thread(s), "
          f"float32 matmul peak {peak / 1e9:.1f} GFLOP/s (measured now)")
    methods = ["fold"] + (["vmap"] if args.vmap else [])
    header = (f"{'family':16s} {'size':8s} {'shape':34s} {'batch':>5s} {'method':6s} {'R':>2s} {'steps':>5s} "
              f"{'ms/step':>8s} {'samples/s':>13s} {'of peak':>7s} {'ratio':>6s}")
    print(header)
    print("-" * len(header))
    for family in families:
        for size, proposal, spec in picks(config, family):
            if size not in args.sizes:
                continue
            dataset = random_dataset(dict(spec.sample), scenes=max(4096, 8 * proposal.batch_size))
            probe = base_plan(proposal, spec, threads=args.threads, steps=args.warmup + 2, warmup=args.warmup)
            per_step = measure(probe, dataset, 1, None)
            timed_steps = max(args.min_steps, round(args.seconds / per_step))
            plan = base_plan(proposal, spec, threads=args.threads, steps=args.warmup + timed_steps,
                             warmup=args.warmup)
            configs = [("alone", 1)] + [(m, r) for m in methods for r in args.replicates]
            best: dict = {}
            failed: dict = {}
            for _ in range(args.repeats):          # interleaved; the best time counts (load only slows a run)
                for method, r in configs:
                    if method in failed:
                        continue
                    try:
                        seconds = measure(plan, dataset, r, None if method == "alone" else method)
                    except Exception as exc:   # vmap on GATr: say why, go on
                        failed[method] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:90]}"
                        continue
                    best[method, r] = min(best.get((method, r), math.inf), seconds)
            alone = best["alone", 1]
            shape = ",".join(f"{k}={v}" for k, v in proposal.shape.items())
            for method, r in configs:
                if (method, r) not in best:
                    continue
                seconds = best[method, r]
                print(f"{family:16s} {size:8s} {shape:34s} {plan.batch_size:5d} {method:6s} {r:2d} {timed_steps:5d} "
                      f"{seconds * 1e3:8.1f} {r * plan.batch_size / seconds:13.0f} "
                      f"{r * plan.step_flops / seconds / peak:7.1%} {r * alone / seconds:6.2f}", flush=True)
            for method, why in failed.items():
                print(f"{family:16s} {size:8s} {shape:34s} {method}: {why}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(run_script(main))
