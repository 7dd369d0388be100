"""GATr training-step time with the MLP's bilinear kernel on each path, per shape: where gathering every
table term at once beats one op per term (the per-op overhead of small tensors), and what the chosen
threshold (`bilinear_kernel.SMALL_SLAB`) gives.

    .venv/bin/python benchmarks/gatr_bilinear.py [--repeats 3] [--steps 20] [--shapes 2x64 2x256 3x256]

Prints seconds per step on one thread for: term by term, gathered, and the default choice; the ratio
term-by-term ÷ default is the speed-up the threshold buys (≥ 1 everywhere when it is set right). Best of
`--repeats` interleaved timings (other processes only ever slow a run down).
"""

from __future__ import annotations

import argparse
import time

import torch

from study.benchmark.format import PROPS
from study.cli import run_script
from study.models import build_model
from study.models.gatr.layers import bilinear_kernel

SHAPES = [(2, 32), (4, 32), (4, 64), (4, 128), (8, 128), (16, 256)]   # (mv_channels, batch)


def step_seconds(mv: int, batch: int, *, steps: int) -> float:
    torch.manual_seed(0)
    model = build_model("gatr", mv_channels=mv, s_channels=2 * mv, depth=2)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, fused=True)
    pos0, vel0 = torch.randn(batch, 4, 4, 3), torch.randn(batch, 4, 4, 3)   # (B, K, M, 3)
    props = torch.randn(batch, 4, PROPS)                                     # (B, K, P)
    for i in range(steps + 3):
        if i == 3:
            start = time.perf_counter()
        loss = model(pos0, vel0, props).square().mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return (time.perf_counter() - start) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--shapes", nargs="+", metavar="MVxBATCH", help="shapes to time, e.g. 3x256 (default: "
                        + " ".join(f"{mv}x{batch}" for mv, batch in SHAPES) + ")")
    args = parser.parse_args()
    try:
        shapes = [tuple(int(v) for v in text.split("x")) for text in args.shapes] if args.shapes else SHAPES
    except ValueError:
        parser.error("--shapes takes MVxBATCH, e.g. 3x256")
    torch.set_num_threads(1)
    default = bilinear_kernel.SMALL_SLAB
    paths = {"term-by-term": 0, "gathered": 1 << 40, "default": default}
    print(f"threshold SMALL_SLAB = {default} elements (C·N); 1 thread; ms per training step, best of {args.repeats}")
    print(f"{'mv':>4} {'batch':>6} {'slab':>7} " + " ".join(f"{p:>13}" for p in paths) + "  term-by-term/default")
    for mv, batch in shapes:
        best = {p: float("inf") for p in paths}
        for _ in range(args.repeats):
            for name, slab in paths.items():
                bilinear_kernel.SMALL_SLAB = slab
                best[name] = min(best[name], step_seconds(mv, batch, steps=args.steps))
        bilinear_kernel.SMALL_SLAB = default
        slab = mv * batch * 4          # channels × tokens (4 bodies per scene)
        print(f"{mv:>4} {batch:>6} {slab:>7} " + " ".join(f"{1e3 * best[p]:>13.2f}" for p in paths)
              + f"  {best['term-by-term'] / best['default']:.2f}")


if __name__ == "__main__":
    raise SystemExit(run_script(main))
