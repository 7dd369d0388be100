"""Do 2 attention heads beat 1 at the small sizes too? A design probe for a study whose head structure stays fixed.

    .venv/bin/python benchmarks/head_probe.py --family transformer --budget 1e12 --shapes width=16,depth=2 \
        width=20,depth=2 width=24,depth=2 [--heads 1 2] [--seed 300] [--seeds 2] [--config studies/cpu-confirm2.toml]

In the committed compute study every family's 1e13 minimum is its first 2-head size, ×0.91-0.94 below the best
1-head size near it (benchmarks/head_steps.py), while at 1e11-1e12 every profile stays at 1 head, because the
networks take their head count from the width. This trains given shapes at one budget of a study file (its
batch, its family's rule lr, steps from the budget, its dataset) with each head count of `--heads` (the networks'
`heads` option: FLOPs and parameters do not depend on it), under seeds 300 on (no study used them), and prints
each run and, per shape, the mean final validation loss per head count and their ratio to the first.
"""

from __future__ import annotations

import argparse
import math
import statistics

import torch

from search_spaces.budget import steps_for
from study.cli import run_script
from study.config import load_config, resolve, study_spec
from study.errors import ConfigError
from study.flops import param_count, step_flops
from study.records import TrialPlan
from study.training import train

from gatr_plateau import family_with, run_plan   # this folder (benchmarks/): one way to plan a run with options


def plan_for(family: str, shape: dict, *, budget: float, batch: int, lr: float, seed: int, heads: int) -> TrialPlan:
    """One run at `budget` executed FLOPs (its steps derived as a study derives them), outside any study."""
    steps = steps_for(budget, step_flops(family, batch_size=batch, **shape))
    return run_plan(family, shape, lr=lr, steps=steps, batch=batch, seed=seed, budget=budget, heads=heads)


def parse_shapes(parser: argparse.ArgumentParser, items: list[str]) -> list[dict]:
    """`KEY=VALUE,KEY=VALUE ...` per shape (a parser error, exit 2, on anything else)."""
    try:
        return [{key: int(value) for key, value in (pair.split("=") for pair in item.split(","))} for item in items]
    except ValueError:
        parser.error("--shapes takes KEY=VALUE,KEY=VALUE per shape with integer values, e.g. width=20,depth=2")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--family", required=True)
    parser.add_argument("--budget", type=float, required=True, help="training FLOPs per run, one of the file's budgets")
    parser.add_argument("--shapes", nargs="+", required=True, metavar="KEY=VALUE,...")
    parser.add_argument("--heads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--seed", type=int, default=300, help="first seed")
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--config", default="studies/cpu-confirm2.toml", help="study file: dataset, batch and rule lr")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (run one probe per core)")
    args = parser.parse_args()
    shapes = parse_shapes(parser, args.shapes)
    config = load_config(args.config)
    if args.family not in config.families or args.budget not in config.budgets:
        parser.error(f"{args.config} has no study of {args.family} at {args.budget:g}")
    for shape in shapes:                                            # every run's network, before any trains
        for heads in args.heads:
            try:
                family_with(args.family, heads=heads).validate(shape)
            except (ConfigError, TypeError) as exc:
                parser.error(f"{args.family} {shape} with {heads} heads: {exc}")
    spec = study_spec(config, args.family, args.budget)
    rule_lr = math.sqrt(spec.lr_range[0] * spec.lr_range[1])      # as the samplers' rule lr: the range's middle
    run = resolve(config)
    dataset = run.task.load(run.task_settings, progress=False)
    torch.set_num_threads(args.threads)
    print(f"{args.family} at {args.budget:g} FLOPs, batch {spec.batch_size}, rule lr {rule_lr:g}, "
          f"dataset of {args.config}, seeds {args.seed}-{args.seed + args.seeds - 1}", flush=True)
    finals: dict[tuple[int, int], list[float]] = {}
    for i, shape in enumerate(shapes):
        for heads in args.heads:
            for seed in range(args.seed, args.seed + args.seeds):
                plan = plan_for(args.family, shape, budget=args.budget, batch=spec.batch_size, lr=rule_lr,
                                seed=seed, heads=heads)
                result = train(plan, dataset)
                finals.setdefault((i, heads), []).append(result.val_loss)
                print(f"{shape} heads {heads} seed {seed}: {plan.steps} steps, val {result.val_loss:.5f} "
                      f"({result.train_seconds:.0f} s)", flush=True)
    print(f"\nmean final val loss over {args.seeds} seeds per head count, and ÷ the first head count's")
    for i, shape in enumerate(shapes):
        base = statistics.fmean(finals[(i, args.heads[0])])
        cells = [f"{h} heads {statistics.fmean(finals[(i, h)]):.5f} (×{statistics.fmean(finals[(i, h)]) / base:.3f})"
                 for h in args.heads]
        print(f"{shape} N={param_count(args.family, **shape):,}: " + "; ".join(cells))


if __name__ == "__main__":
    raise SystemExit(run_script(main))
