"""Small-trial training throughput per lever, as a fraction of the matmul peak measured in the same run.

    .venv/bin/python benchmarks/small_trials.py [--steps 60] [--repeats 3] [--compile] [--batches 64 256 1024]

For a few small shapes (the ones small budgets train), the training step is timed with the levers of
`study.training.train` switched one at a time, starting from the loop `train()` ran before issue 10:
  baseline   per-step `.item()` finiteness check, default (for-loop) AdamW, LambdaLR, per-tensor
             clip_grad_norm_, four per-split gathers with a fresh randint per step
  foreach    AdamW(foreach=True)            fused      AdamW(fused=True)
  no-sync    finiteness checked at validation only (no per-step `.item()`)
  predraw    minibatch indices drawn for many steps at once (four gathers per step)
  packed     predraw + one gather from a packed (S, K, 44) train tensor
  clip-fe    clip_grad_norm_(foreach=True)  lr-direct  lr written into param_groups (no LambdaLR)
  adopted    everything train() now does (fused AdamW, no per-step sync, indices drawn ahead, foreach
             clip, direct lr) - and the real `train()` on a TrialPlan (start-up, validation and final
             losses included, no warm-up)
  compile    adopted + torch.compile(model) (with --compile; compile time excluded)
  threads    adopted at 1 and 2 threads
Achieved FLOP/s = training FLOPs per step ÷ seconds per step (`study.flops.step_flops`, as executed,
where it exists; else 3 × `forward_flops`, the nominal count, a few percent above it at small shapes); "of peak" divides by the best float32 matmul rate measured at
the same thread count in this run. Each variant runs `--repeats` interleaved times; the best time counts
(other processes only ever slow a run down). Ratios within one run are the figures to read.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import time

import torch

from study.benchmark.format import Dataset, Split
import study.flops
from study.cli import run_script
from study.flops import forward_flops
from study.models import build_model
from study.records import TrialPlan
from study.training import train

SHAPES = [
    ("transformer", dict(width=32, depth=1)),
    ("transformer", dict(width=64, depth=2)),
    ("gatr", dict(mv_channels=1, s_channels=2, depth=1)),
    ("gatr", dict(mv_channels=8, s_channels=16, depth=2)),
]

BASE = dict(optimizer="default", sync=True, predraw=False, packed=False, clip_foreach=None, lambda_lr=True, compile=False)
LEVERS = {
    "baseline": {},
    "foreach": dict(optimizer="foreach"),
    "fused": dict(optimizer="fused"),
    "no-sync": dict(sync=False),
    "predraw": dict(predraw=True),
    "packed": dict(predraw=True, packed=True),
    "clip-fe": dict(clip_foreach=True),
    "lr-direct": dict(lambda_lr=False),
}
# What train() does. The packed gather is left out: ~3% at the smallest shape, within noise elsewhere,
# and it needs a second copy of the training split in every worker.
ADOPTED = dict(optimizer="fused", sync=False, predraw=True, packed=False, clip_foreach=True, lambda_lr=False)


def matmul_peak(threads: int, *, size: int = 1024, repeats: int = 10) -> float:
    """Best float32 FLOP/s of a square matmul at `threads` threads."""
    torch.set_num_threads(threads)
    a, b = torch.randn(size, size), torch.randn(size, size)
    best = math.inf
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - start)
    return 2 * size**3 / best


def synthetic(scenes: int, bodies: int = 4) -> Split:
    g = torch.Generator().manual_seed(0)
    pos0 = torch.randn(scenes, bodies, 4, 3, generator=g)
    return Split(pos0, torch.randn(scenes, bodies, 4, 3, generator=g), torch.rand(scenes, bodies, 8, generator=g),
                 pos0 + 0.1 * torch.randn(scenes, bodies, 4, 3, generator=g))


def step_loop(family, shape, split: Split, *, batch: int, steps: int, threads: int, **lever):
    """A closure running `steps` training steps with the given levers (the model persists across calls)."""
    o = dict(BASE, **lever)
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = build_model(family, **shape)
    net = torch.compile(model) if o["compile"] else model
    kwargs = {"foreach": dict(foreach=True), "fused": dict(fused=True)}.get(o["optimizer"], {})
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.01, **kwargs)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0) if o["lambda_lr"] else None
    gen = torch.Generator().manual_seed(0)
    n = len(split)
    packed = torch.cat([split.pos0.flatten(2), split.vel0.flatten(2), split.props, split.posT.flatten(2)], -1)
    params = list(model.parameters())

    def run():
        indices = torch.randint(n, (steps, batch), generator=gen) if o["predraw"] else None
        for i in range(steps):
            if o["packed"]:
                rows = packed[indices[i]]
                B, K = rows.shape[:2]
                pos0, vel0 = rows[..., :12].view(B, K, 4, 3), rows[..., 12:24].view(B, K, 4, 3)
                props, posT = rows[..., 24:32], rows[..., 32:].view(B, K, 4, 3)
            elif o["predraw"]:
                index = indices[i]
                pos0, vel0, props, posT = split.pos0[index], split.vel0[index], split.props[index], split.posT[index]
            else:
                index = torch.randint(n, (batch,), generator=gen)
                pos0, vel0, props, posT = split.pos0[index], split.vel0[index], split.props[index], split.posT[index]
            loss = torch.mean((net(pos0, vel0, props) - posT) ** 2)
            if o["sync"] and not math.isfinite(loss.item()):
                raise RuntimeError("diverged")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0, foreach=o["clip_foreach"])
            if not o["lambda_lr"]:
                for group in opt.param_groups:
                    group["lr"] = 1e-4
            opt.step()
            if sched is not None:
                sched.step()
        return loss.item()

    run.threads = threads
    return run


def step_flops(family: str, shape: dict, batch: int) -> float:
    """Training FLOPs of one step: `study.flops.step_flops` (as executed) where it exists, else 3 x forward."""
    if hasattr(study.flops, "step_flops"):
        return study.flops.step_flops(family, batch_size=batch, bodies=4, **shape)
    return 3 * forward_flops(family, bodies=4, **shape) * batch


def timed(run, steps):
    torch.set_num_threads(run.threads)
    start = time.perf_counter()
    run()
    return (time.perf_counter() - start) / steps


def train_step_seconds(family, shape, dataset, *, batch, steps, threads) -> float:
    """Seconds per step of the real `train()` (validation and final losses included) over `steps` steps."""
    plan = TrialPlan(family=family, budget=0.0, shape=dict(shape), lr=1e-4, steps=steps, batch_size=batch,
                     step_flops=0.0, forward_flops=0.0, params=0, seed=0, threads=threads)
    result = train(plan, dataset)
    return result.train_seconds / steps


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--batches", type=int, nargs="*", default=[256, 1024], help="extra batch sizes (adopted)")
    parser.add_argument("--compile", action="store_true", help="also time torch.compile(model) (slow to compile)")
    parser.add_argument("--two-threads", action=argparse.BooleanOptionalAction, default=True,
                        help="also time 2 threads per trial (meaningless when other processes hold the cores)")
    parser.add_argument("--shapes", type=int, nargs="*", default=None, help="indices into SHAPES")
    args = parser.parse_args()
    shapes = [SHAPES[i] for i in args.shapes] if args.shapes is not None else SHAPES
    split = synthetic(8192)
    small = synthetic(256)
    dataset = Dataset(split, small, small, key="synthetic")
    peak = {t: matmul_peak(t) for t in (1, 2)}
    print(f"torch {torch.__version__}, matmul peak at start: 1 thread {peak[1] / 1e9:.1f} GFLOP/s, "
          f"2 threads {peak[2] / 1e9:.1f} GFLOP/s")
    print(f"FLOP count: {'study.flops.step_flops' if hasattr(study.flops, 'step_flops') else '3 x forward_flops'}; "
          "of peak: against the best matmul rate at the same thread count so far in this run")
    print(f"{'family':12s} {'shape':36s} {'lever':18s} {'batch':>5s} {'thr':>3s} {'ms/step':>8s} "
          f"{'GFLOP/s':>8s} {'of peak':>8s} {'vs base':>8s}", flush=True)
    for family, shape in shapes:
        variants = {name: (args.batch, 1, dict(lever)) for name, lever in LEVERS.items()}
        variants["adopted"] = (args.batch, 1, dict(ADOPTED))
        if args.two_threads:
            variants["adopted 2thr"] = (args.batch, 2, dict(ADOPTED))
            variants["baseline 2thr"] = (args.batch, 2, {})
        if args.compile:
            variants["adopted+compile"] = (args.batch, 1, dict(ADOPTED, compile=True))
        for b in args.batches:
            variants[f"adopted b{b}"] = (b, 1, dict(ADOPTED))
            if args.two_threads:
                variants[f"adopted b{b} 2thr"] = (b, 2, dict(ADOPTED))
        runs = {name: step_loop(family, shape, split, batch=b, steps=args.steps, threads=t, **lever)
                for name, (b, t, lever) in variants.items()}
        for run in runs.values():  # warm-up (compiles)
            run()
        best = {name: math.inf for name in runs}
        for _ in range(args.repeats):
            for name, run in runs.items():
                best[name] = min(best[name], timed(run, args.steps))
            for t in (1, 2):
                peak[t] = max(peak[t], matmul_peak(t))
        best["train() adopted"] = min(train_step_seconds(family, shape, dataset, batch=args.batch,
                                                         steps=args.steps * 3, threads=1)
                                      for _ in range(args.repeats))
        variants["train() adopted"] = (args.batch, 1, {})
        text = ", ".join(f"{k}={v}" for k, v in shape.items())
        base = step_flops(family, shape, args.batch) / best["baseline"]
        for name, seconds in best.items():
            b, t, _ = variants[name]
            rate = step_flops(family, shape, b) / seconds
            print(f"{family:12s} {text:36s} {name:18s} {b:5d} {t:3d} {1e3 * seconds:8.2f} {rate / 1e9:8.2f} "
                  f"{rate / peak[t]:8.1%} {rate / base:7.2f}x", flush=True)
    print(f"matmul peak (best of run): 1 thread {peak[1] / 1e9:.1f}, 2 threads {peak[2] / 1e9:.1f} GFLOP/s")
    return 0


if __name__ == "__main__":
    raise SystemExit(run_script(main))
