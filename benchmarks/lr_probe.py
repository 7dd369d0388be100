"""Validation loss after a fixed number of steps, per learning rate: how the lr ranges of the studies were chosen.

    .venv/bin/python benchmarks/lr_probe.py [--batch 256] [--scenes 65536] [--lrs 2e-3 4e-3 8e-3 1.6e-2 3e-2]

Trains each probe shape (`study.training.train`, the trial's own loop: warm-up, cosine decay, clipping) at
every learning rate on the default study's dataset and prints its final validation loss, one line per run,
and per shape the best rate. The studies' lr ranges (`training.lr_ranges`, at batch 256 with
`lr_batch_scaling = "sqrt"`) are centred where these losses are lowest; the earlier ranges, tuned at batch
32, starve large-batch runs: at batch 256 a width-48 transformer after 2,000 steps reached 0.041 at lr 2e-3
and 0.035 at 1.6e-2, GATr with 7 multivector channels after 500 steps 0.073 at 4e-3 and 0.035 at 2.4e-2.
Each run takes 20-30 s on one core.
"""

from __future__ import annotations

import argparse

from study.benchmark import load_dataset
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
    args = parser.parse_args()
    dataset = load_dataset(DataConfig(scenes=args.scenes).benchmark(), progress=True)   # the default study's data
    for family, shape, steps in PROBES:
        if family not in args.families:
            continue
        losses = {}
        for lr in args.lrs:
            plan = TrialPlan(family=family, budget=0.0, shape=shape, lr=lr, steps=steps, batch_size=args.batch,
                             step_flops=step_flops(family, batch_size=args.batch, **shape),
                             forward_flops=forward_flops(family, **shape), params=param_count(family, **shape),
                             seed=0, evals=4)
            result = train(plan, dataset)
            losses[lr] = result.val_loss
            print(f"{family:16s} {shape} batch {args.batch} steps {steps} lr {lr:.3g}: val {result.val_loss:.4f} "
                  f"(train {result.train_loss:.4f}, {result.train_seconds:.1f} s)", flush=True)
        best = min(losses, key=losses.get)
        print(f"{family:16s} best lr {best:.3g} (val {losses[best]:.4f})", flush=True)


if __name__ == "__main__":
    main()
