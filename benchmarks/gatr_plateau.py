"""Small GATr networks in variants (branch initialisation, distance normaliser): how often a run ends on the plateau.

    .venv/bin/python benchmarks/gatr_plateau.py [--config studies/cpu-confirm2.toml] [--lrs 0.012 0.024 0.048]
        [--seed 100] [--seeds 6] [--shape mv_channels=2 s_channels=4 depth=2] [--steps 2459] [--batch 64]
        [--variants random zero] [--warmup 0.2] [--init-seed 609]

In the first confirmation study (`git show 43138ab:docs/results/cpu/compute.db`) 11 of GATr's 40 runs at 1e11-1e12 ended on a
plateau at 0.047-0.056 against 0.031-0.037 for their seed-mates at the same shape, steps and lr. This trains
one of those grid points (the defaults: 2 multivector channels, depth 2, 2,459 steps at batch 64, a 1e11 run)
on the study file's dataset with the trial's own loop (`study.training.train`), in each variant of `--variants`,
at each lr and seed, and prints every final validation loss and per variant and lr the mean, the largest, and
how many runs ended above `--stuck`. Variants: random (the study's network), zero (the blocks' last layers start
as the zero map, `GATr(zero_branches=True)`), normalised (attention's distance features from normalised points,
`GATr(normalise_distance=True)`, as the official GATr library), two-heads (2 attention heads where the rule
gives 1, `GATr(heads=2)`; benchmarks/head_probe.py), gain (a learned factor per head on the distance logits,
`GATr(distance_gain=True)`), half-init and quarter-init (every EquiLinear's multivector weights 0.5 or 0.25 times
their default scale, `GATr(init_scale=...)`), zero-head (the output layer starts as the zero map: no displacement
predicted, `GATr(zero_head=True)`), norm-gain (distance features from normalised points with a learned gain per
head, near the official library's attention, which learns one per head and channel: `GATr(normalise_distance=True,
distance_gain=True)`), vel-quarter (velocities enter as their displacement in 0.25 s, on the positions' scale,
`GATr(velocity_scale=0.25)`). Seeds 100 on were used by no study and by no run that chose the initialisation.
About 30 s per run on one core.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import statistics

import torch

from study.cli import run_script
from study.config import load_config, resolve
from study.flops import forward_flops, param_count, step_flops
from study.models.registry import get_family
from study.records import TrialPlan
from study.training import train

VARIANTS = {"random": {}, "zero": {"zero_branches": True}, "normalised": {"normalise_distance": True},
            "two-heads": {"heads": 2}, "gain": {"distance_gain": True}, "half-init": {"init_scale": 0.5},
            "quarter-init": {"init_scale": 0.25}, "zero-head": {"zero_head": True},
            "norm-gain": {"normalise_distance": True, "distance_gain": True},
            "vel-quarter": {"velocity_scale": 0.25}}


def family_with(family: str, *, init_seed: int | None = None, **options):
    """The installed family `family` building its networks with these keyword options of its `build` (e.g.
    heads=2, zero_branches=True), as the 2-head families of study.models.registry do; with `init_seed`, their
    parameters drawn from that seed instead of the run's (whose seed still orders the minibatches)."""
    base = dataclasses.replace(get_family(family), options=tuple(sorted(options.items())))
    if init_seed is None:
        return base

    @functools.wraps(base.build_fn)
    def seeded(**kwargs):
        torch.manual_seed(init_seed)
        return base.build_fn(**kwargs)

    return dataclasses.replace(base, build_fn=seeded)


def run_plan(family: str, shape: dict, *, lr: float, steps: int, batch: int, seed: int, budget: float = 0.0,
             evals: int = 8, warmup: float | None = None, **options) -> TrialPlan:
    """The trial plan of one run outside any study, its network built with `options` (see `family_with`; they
    execute the same FLOPs: the normaliser is elementwise, counted 0; heads split the same products)."""
    plan = TrialPlan(family=family, budget=budget, shape=shape, lr=lr, steps=steps, batch_size=batch,
                     step_flops=step_flops(family, batch_size=batch, **shape),
                     forward_flops=forward_flops(family, **shape), params=param_count(family, **shape), seed=seed,
                     evals=evals, model=family_with(family, **options))
    return plan if warmup is None else dataclasses.replace(plan, warmup_fraction=warmup)


def plan_for(shape: dict, *, lr: float, steps: int, batch: int, seed: int, variant: str = "random",
             evals: int = 8, warmup: float | None = None, init_seed: int | None = None) -> TrialPlan:
    """The trial plan of one GATr run outside any study, its network built as `variant` (a key of VARIANTS);
    `warmup`: its warm-up fraction instead of the default; `init_seed`: see `family_with`."""
    options = dict(VARIANTS[variant]) | ({} if init_seed is None else {"init_seed": init_seed})
    return run_plan("gatr", shape, lr=lr, steps=steps, batch=batch, seed=seed, evals=evals, warmup=warmup,
                    **options)


def parse_shape(parser: argparse.ArgumentParser, items: list[str]) -> dict:
    """`--shape KEY=VALUE ...` as shape kwargs (a parser error, exit 2, on anything else)."""
    try:
        return {key: int(value) for key, value in (item.split("=") for item in items)}
    except ValueError:
        parser.error("--shape takes KEY=VALUE with integer values, e.g. mv_channels=3")


def study_dataset(path: str):
    """The dataset a study file's runs train on."""
    run = resolve(load_config(path))
    return run.task.load(run.task_settings, progress=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="studies/cpu-confirm2.toml", help="study file whose dataset the runs train on")
    parser.add_argument("--lrs", type=float, nargs="+", default=[0.012, 0.024, 0.048])
    parser.add_argument("--seed", type=int, default=100, help="first seed")
    parser.add_argument("--seeds", type=int, default=6, help="seeds per initialisation and lr")
    parser.add_argument("--shape", nargs="+", default=["mv_channels=2", "s_channels=4", "depth=2"], metavar="KEY=VALUE")
    parser.add_argument("--steps", type=int, default=2459)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--stuck", type=float, default=0.045, help="a final validation loss above this counts as stuck")
    parser.add_argument("--variants", nargs="+", default=["random", "zero"], choices=list(VARIANTS))
    parser.add_argument("--warmup", type=float, default=None, help="warm-up fraction (default: the trial's, 0.05)")
    parser.add_argument("--init-seed", type=int, default=None,
                        help="draw every run's parameters from this seed (its own seed still orders the minibatches)")
    args = parser.parse_args()
    shape = parse_shape(parser, args.shape)
    dataset = study_dataset(args.config)
    flops = step_flops("gatr", batch_size=args.batch, **shape)
    print(f"gatr {shape}, {args.steps} steps at batch {args.batch} ({flops * args.steps:.3g} training FLOPs), "
          f"dataset of {args.config}; stuck = final val > {args.stuck}", flush=True)
    finals: dict[tuple[str, float], list[float]] = {}
    for lr in args.lrs:
        for seed in range(args.seed, args.seed + args.seeds):
            for name in args.variants:
                plan = plan_for(shape, lr=lr, steps=args.steps, batch=args.batch, seed=seed, variant=name,
                                warmup=args.warmup, init_seed=args.init_seed)
                result = train(plan, dataset)
                finals.setdefault((name, lr), []).append(result.val_loss)
                curve = " ".join(f"{value:.4f}" for _, value in result.curve)
                print(f"{name:10s} lr {lr:<6g} seed {seed}: val {result.val_loss:.4f}  curve {curve}  "
                      f"({result.train_seconds:.0f} s)", flush=True)
    print(f"\n{'variant':10s} {'lr':>6s} {'runs':>4s} {'mean':>7s} {'max':>7s} {'stuck':>5s}")
    for name in args.variants:
        for lr in args.lrs:
            values = finals[(name, lr)]
            stuck = sum(value > args.stuck for value in values)
            print(f"{name:10s} {lr:6g} {len(values):4d} {statistics.fmean(values):7.4f} {max(values):7.4f} {stuck:5d}")
        every = [v for lr in args.lrs for v in finals[(name, lr)]]
        print(f"{name:10s} {'all':>6s} {len(every):4d} {statistics.fmean(every):7.4f} {max(every):7.4f} "
              f"{sum(v > args.stuck for v in every):5d}")


if __name__ == "__main__":
    raise SystemExit(run_script(main))
