"""What a stuck small GATr run has not learned: its attention, per block, after training.

    .venv/bin/python benchmarks/gatr_attention.py [--config studies/cpu-confirm2.toml] [--lr 0.012] [--seeds 100 102 103 105]
        [--shape mv_channels=2 s_channels=4 depth=2] [--steps 2459] [--batch 64] [--variant random|zero|normalised]
        [--track 16]

Trains each seed as benchmarks/gatr_plateau.py does (the trial's own loop, the study file's dataset) and then, on
4,096 validation scenes, prints its validation loss, the loss with every attention replaced by the plain mean
over the scene's bodies (what attention adds), each block's mean attention entropy in nats (ln 4 = 1.386 is
uniform over the 4 bodies), and per block how far each part of the logits moves across a query's keys (the
spread max − min, averaged): the invariant inner product of the multivectors, the distance features (−w_q² w_k²
‖p_q − p_k‖², `primitives/distance.py`) and the scalars, and the root-mean-square trivector weight w of its
queries and keys (the distance term is quartic in them). `--track N` prints the same during training, at N
validations. About 30 s per seed on one core.
"""

from __future__ import annotations

import argparse
import contextlib
import functools

import torch
import torch.nn.functional as F

from gatr_plateau import VARIANTS, parse_shape, plan_for, study_dataset   # this folder: the same runs as that benchmark
from study import training
from study.cli import run_script
from study.models.gatr import heads_for

SCENES = 4096


@contextlib.contextmanager
def attention_replaced(function):
    """Swap `scaled_dot_product_attention` (what GATr's attention layer calls) for `function` inside the block."""
    original = F.scaled_dot_product_attention
    F.scaled_dot_product_attention = function
    try:
        yield
    finally:
        F.scaled_dot_product_attention = original


def diagnose(model: torch.nn.Module, split, per_head: int) -> tuple[float, float, list[float], list[tuple]]:
    """(loss, loss with mean-over-bodies attention, mean attention entropy per block, per block the mean logit
    spread over keys of its (inner product, distance, scalar) parts and the root-mean-square trivector weight
    (e123) of its queries and keys) on `split`; `per_head`: mv channels per head."""
    original = F.scaled_dot_product_attention

    def loss() -> float:
        with torch.no_grad():
            return float(((model(split.pos0, split.vel0, split.props) - split.posT) ** 2).mean())

    def uniform(q, k, v):
        return v.mean(-2, keepdim=True).expand_as(v)            # (B, H, K, F): every query the mean value

    entropies: list[float] = []
    spreads: list[tuple] = []
    cuts = (0, 8 * per_head, 13 * per_head, None)   # features: 8 non-e0 components, 5 distance, then scalars

    def spy(q, k, v):
        scale = q.shape[-1] ** 0.5
        p = torch.softmax(q @ k.transpose(-1, -2) / scale, dim=-1)   # (B, H, K, K)
        entropies.append(float(-(p * p.clamp_min(1e-12).log()).sum(-1).mean()))
        parts = []
        for lo, hi in zip(cuts[:-1], cuts[1:]):
            logits = q[..., lo:hi] @ k[..., lo:hi].transpose(-1, -2) / scale   # (B, H, K, K)
            parts.append(float((logits.amax(-1) - logits.amin(-1)).mean()))
        lo = 8 * per_head   # then 5 distance features a channel: w² first in a query's, −w² second in a key's
        w_q = q[..., lo:lo + 5 * per_head:5].mean().sqrt()
        w_k = (-k[..., lo + 1:lo + 5 * per_head:5]).mean().sqrt()
        spreads.append((*parts, float(w_q), float(w_k)))
        return original(q, k, v)

    full = loss()
    with attention_replaced(uniform):
        flat = loss()
    with attention_replaced(spy):
        loss()
    return full, flat, entropies, spreads


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="studies/cpu-confirm2.toml")
    parser.add_argument("--lr", type=float, default=0.012)
    parser.add_argument("--seeds", type=int, nargs="+", default=[100, 102, 103, 105])
    parser.add_argument("--shape", nargs="+", default=["mv_channels=2", "s_channels=4", "depth=2"], metavar="KEY=VALUE")
    parser.add_argument("--steps", type=int, default=2459)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--variant", default="random", choices=list(VARIANTS),
                        help="the network: a variant of benchmarks/gatr_plateau.py, e.g. random (the study's), zero "
                             "(blocks start as the identity), normalised (distance features from normalised points)")
    parser.add_argument("--track", type=int, default=0, metavar="N",
                        help="also diagnose at N evenly spaced validations during training")
    args = parser.parse_args()
    shape = parse_shape(parser, args.shape)
    dataset = study_dataset(args.config)
    built: list[torch.nn.Module] = []
    build = training.build
    training.build = lambda plan: built.append(build(plan)) or built[-1]   # keep the trained network
    split = dataset.val[:SCENES]
    heads = heads_for(shape["mv_channels"])
    print(f"gatr {shape}, {args.steps} steps at batch {args.batch}, lr {args.lr}, variant {args.variant}; "
          f"entropy ln 4 = 1.386 is uniform attention")
    per_head = shape["mv_channels"] // heads

    def track(seed: int, step: int, val: float) -> None:
        _, flat, entropies, spreads = diagnose(built[-1], split, per_head)   # no mode switch: no dropout, no norm stats
        print(f"  seed {seed} step {step}: val {val:.4f}  mean-over-bodies {flat:.4f}  entropy "
              f"{' '.join(f'{e:.2f}' for e in entropies)}  {describe(spreads)}", flush=True)

    for seed in args.seeds:
        plan = plan_for(shape, lr=args.lr, steps=args.steps, batch=args.batch, seed=seed,
                        variant=args.variant, evals=max(2, args.track))
        report = functools.partial(track, seed) if args.track else None
        result = training.train(plan, dataset, report=report)
        full, flat, entropies, spreads = diagnose(built[-1].eval(), split, per_head)
        print(f"seed {seed}: val {result.val_loss:.4f}  on {SCENES} scenes {full:.4f}, mean-over-bodies attention "
              f"{flat:.4f}  attention entropy per block {' '.join(f'{e:.3f}' for e in entropies)}  "
              f"{describe(spreads)}", flush=True)


def describe(spreads: list[tuple]) -> str:
    """The per-block logit spreads and query/key trivector weights of `diagnose`, as one piece of a line."""
    return ("logit spread (inner product, distance, scalars) per block "
            + "  ".join("/".join(f"{x:.2f}" for x in block[:3]) for block in spreads)
            + "  rms trivector weight (query, key) per block "
            + "  ".join("/".join(f"{x:.2f}" for x in block[3:]) for block in spreads))


if __name__ == "__main__":
    raise SystemExit(run_script(main))
