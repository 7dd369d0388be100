"""GATr's seed-to-seed spread of validation loss per learning rate at one shape, batch and step count.

    .venv/bin/python benchmarks/gatr_seed_noise.py [--channels 3] [--batch 64] [--steps 1172] [--seeds 4]
                                                   [--lrs 3e-3 6e-3 1.2e-2 2.4e-2 4.8e-2]

Trains the shape with `study.training.train` (the trial's own loop) on the default study's dataset, once
per (lr, seed), and prints each final validation loss, then per lr the mean and range. The defaults are the
fifth CPU study's noisiest GATr point (1e11 FLOPs: 3 multivector channels, batch 64, 1,172 steps), where
the study's lr (0.012 by the square-root batch rule) left two of four seeds near the no-motion plateau.
Each run takes about 20 s on one core.
"""

from __future__ import annotations

import argparse
import statistics

from study.benchmark import load_dataset
from study.config import DataConfig
from study.flops import forward_flops, param_count, step_flops
from study.records import TrialPlan
from study.training import train


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--channels", type=int, default=3, help="multivector channels (scalar: twice as many)")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=1172)
    parser.add_argument("--seeds", type=int, default=4)
    parser.add_argument("--lrs", type=float, nargs="+", default=[3e-3, 6e-3, 1.2e-2, 2.4e-2, 4.8e-2])
    args = parser.parse_args()
    family, shape = "gatr", {"mv_channels": args.channels, "s_channels": 2 * args.channels, "depth": 2}
    dataset = load_dataset(DataConfig().benchmark(), progress=True)   # the default study's data
    for lr in args.lrs:
        losses = []
        for seed in range(args.seeds):
            plan = TrialPlan(family=family, budget=0.0, shape=shape, lr=lr, steps=args.steps, batch_size=args.batch,
                             step_flops=step_flops(family, batch_size=args.batch, **shape),
                             forward_flops=forward_flops(family, **shape), params=param_count(family, **shape),
                             seed=1000 + seed, evals=8)
            losses.append(train(plan, dataset).val_loss)
            print(f"{shape} batch {args.batch} steps {args.steps} lr {lr:.3g} seed {seed}: val {losses[-1]:.4f}",
                  flush=True)
        print(f"lr {lr:.3g}: mean {statistics.fmean(losses):.4f}, range [{min(losses):.4f}, {max(losses):.4f}] "
              f"over {len(losses)} seeds", flush=True)


if __name__ == "__main__":
    main()
