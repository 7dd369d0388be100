"""Validation loss after a fixed number of steps, per learning rate (and seed): how the lr ranges were chosen.

    .venv/bin/python benchmarks/lr_probe.py [--batch 256] [--scenes 65536] [--lrs 2e-3 4e-3 8e-3 1.6e-2 3e-2]
        [--families F ...] [--shape KEY=VALUE ...] [--steps N] [--seed 0] [--seeds 1]

Trains each probe shape (`study.training.train`, the trial's own loop: warm-up, cosine decay, clipping) at
every learning rate on the default study's dataset and prints its final validation loss, one line per run,
and per shape the best rate. The studies' lr ranges (`training.lr_ranges`, at batch 256 with
`lr_batch_scaling = "sqrt"`) are centred where these losses are lowest; the earlier ranges, tuned at batch
32, starve large-batch runs: at batch 256 a width-48 transformer after 2,000 steps reached 0.041 at lr 2e-3
and 0.035 at 1.6e-2, GATr with 7 multivector channels after 500 steps 0.073 at 4e-3 and 0.035 at 2.4e-2.
Each run takes 20-30 s on one core.

`--shape` and `--steps` replace the probes' shape settings and step count; `--seeds N` trains every rate
with seeds `--seed` .. `--seed` + N − 1 and prints each rate's mean and range (the seed-to-seed spread).
The fifth CPU study's GATr seed spread at 1e11 (`git show 3a3d7e3:docs/results/cpu-v5/README.md`):

    .venv/bin/python benchmarks/lr_probe.py --families gatr --shape mv_channels=3 s_channels=6 --steps 1172 \\
        --batch 64 --lrs 3e-3 6e-3 1.2e-2 2.4e-2 4.8e-2 --seed 1000 --seeds 4
"""

from __future__ import annotations

import argparse
import statistics

from study.benchmark import load_dataset
from study.cli import run_script
from study.config import DataConfig
from study.flops import forward_flops, param_count, step_flops
from study.records import TrialPlan
from study.training import train

PROBES = [  # (family, shape, steps): a shape each study's grids hold, trained as long as its grid points
    ("transformer", {"width": 48, "depth": 2}, 2000),
    ("transformer-aug", {"width": 48, "depth": 2}, 2000),
    ("gatr", {"mv_channels": 7, "s_channels": 14, "depth": 2}, 500),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--scenes", type=int, default=65536)
    parser.add_argument("--lrs", type=float, nargs="+", default=[2e-3, 4e-3, 8e-3, 1.6e-2, 3e-2])
    parser.add_argument("--families", nargs="+", default=[f for f, _, _ in PROBES])
    parser.add_argument("--shape", nargs="+", default=[], metavar="KEY=VALUE",
                        help="replace probe shape settings, e.g. mv_channels=3 s_channels=6")
    parser.add_argument("--steps", type=int, default=None, help="steps per run (default: the probe's)")
    parser.add_argument("--seed", type=int, default=0, help="first seed")
    parser.add_argument("--seeds", type=int, default=1, help="seeds per learning rate")
    args = parser.parse_args()
    try:
        override = {key: int(value) for key, value in (item.split("=") for item in args.shape)}
    except ValueError:
        parser.error("--shape takes KEY=VALUE with integer values, e.g. mv_channels=3")
    dataset = load_dataset(DataConfig(scenes=args.scenes).benchmark(), progress=True)   # the default study's data
    for family, shape, steps in PROBES:
        if family not in args.families:
            continue
        shape, steps = {**shape, **override}, args.steps or steps
        losses = {}
        for lr in args.lrs:
            runs = []
            for seed in range(args.seed, args.seed + args.seeds):
                plan = TrialPlan(family=family, budget=0.0, shape=shape, lr=lr, steps=steps, batch_size=args.batch,
                                 step_flops=step_flops(family, batch_size=args.batch, **shape),
                                 forward_flops=forward_flops(family, **shape), params=param_count(family, **shape),
                                 seed=seed, evals=4)
                result = train(plan, dataset)
                runs.append(result.val_loss)
                print(f"{family:16s} {shape} batch {args.batch} steps {steps} lr {lr:.3g} seed {seed}: val "
                      f"{result.val_loss:.4f} (train {result.train_loss:.4f}, {result.train_seconds:.1f} s)", flush=True)
            losses[lr] = statistics.fmean(runs)
            if args.seeds > 1:
                print(f"{family:16s} lr {lr:.3g}: mean {losses[lr]:.4f}, range [{min(runs):.4f}, {max(runs):.4f}] "
                      f"over {len(runs)} seeds", flush=True)
        best = min(losses, key=losses.get)
        print(f"{family:16s} best lr {best:.3g} (mean val {losses[best]:.4f})", flush=True)


if __name__ == "__main__":
    raise SystemExit(run_script(main))
