"""Training throughput per family and shape, as a fraction of this machine's measured matmul peak.

    .venv/bin/python benchmarks/throughput.py [--batch 512] [--device cpu|cuda] [--families gatr]

Peak: best float32 (CPU) / bf16 (CUDA) square matmul rate measured in the same run with the same
thread count. Achieved: training FLOPs per sample as executed (`study.flops.sample_training_flops`,
the budget's unit) × samples/s, so the fraction is what the FLOP budget buys in wall time; the
nominal 3 × forward rate is printed beside it. On CUDA the step runs under bf16 autocast.
"""

from __future__ import annotations

import argparse
import time

import torch

from study.cli import run_script
from study.flops import forward_flops, sample_training_flops
from study.models import build_model

SHAPES = {
    "transformer": [("small", dict(width=64, depth=2)), ("medium", dict(width=128, depth=2)),
                    ("large", dict(width=256, depth=2))],
    "gatr": [("small", dict(mv_channels=8, s_channels=16, depth=2)),
             ("medium", dict(mv_channels=16, s_channels=32, depth=2)),
             ("large", dict(mv_channels=32, s_channels=64, depth=2))],
}


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def matmul_peak(device: str, *, size: int = 2048, repeats: int = 20) -> float:
    """Best observed FLOP/s of a (size × size) @ (size × size) matmul (float32 CPU, bf16 CUDA)."""
    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    if device == "cuda":
        size = 8192
    a = torch.randn(size, size, device=device, dtype=dtype)
    b = torch.randn(size, size, device=device, dtype=dtype)
    best = float("inf")
    for _ in range(repeats):
        _sync(device)
        start = time.perf_counter()
        a @ b
        _sync(device)
        best = min(best, time.perf_counter() - start)
    return 2 * size**3 / best


def train_rate(family: str, shape: dict, *, batch: int, bodies: int, steps: int, device: str) -> float:
    """Training samples per second (forward, MSE loss, backward, Adam step), median of `steps`."""
    torch.manual_seed(0)
    model = build_model(family, **shape).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    pos0 = torch.randn(batch, bodies, 4, 3, device=device)
    vel0 = torch.randn_like(pos0)
    props = torch.rand(batch, bodies, 8, device=device)
    target = pos0 + 0.1 * torch.randn_like(pos0)
    times = []
    for i in range(steps + 3):
        _sync(device)
        start = time.perf_counter()
        with torch.autocast(device_type="cuda", dtype=torch.bfloat16, enabled=device == "cuda"):
            loss = (model(pos0, vel0, props).float() - target).square().mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        _sync(device)
        if i >= 3:  # warm-up
            times.append(time.perf_counter() - start)
    times.sort()
    return batch / times[len(times) // 2]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--batch", type=int, default=512, help="scenes per step")
    parser.add_argument("--bodies", type=int, default=4)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--families", nargs="*", default=list(SHAPES), choices=list(SHAPES))
    args = parser.parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.exit(2, "throughput.py: error: --device cuda but no CUDA device is available\n")
    rows = []
    before = peak = matmul_peak(args.device)
    for family in args.families:
        for size, shape in SHAPES[family]:
            rate = train_rate(family, shape, batch=args.batch, bodies=args.bodies, steps=args.steps,
                              device=args.device)
            after = matmul_peak(args.device)
            rows.append((family, size, shape, rate, max(before, after)))  # peak around this row
            peak, before = max(peak, after), after  # best peak seen in the run (shared machines)
    print(f"device {args.device}, threads {torch.get_num_threads()}, batch {args.batch} scenes x "
          f"{args.bodies} bodies, matmul peak {peak / 1e9:.1f} GFLOP/s "
          f"({'bf16' if args.device == 'cuda' else 'float32'}, best of the run)")
    print(f"{'family':12s} {'size':7s} {'shape':40s} {'samples/s':>10s} {'GFLOP/s':>8s} {'of peak':>8s}"
          f" {'of local':>9s} {'nominal':>8s}")
    for family, size, shape, rate, local in rows:
        achieved = sample_training_flops(family, bodies=args.bodies, **shape) * rate
        nominal = 3 * forward_flops(family, bodies=args.bodies, **shape) * rate
        text = ", ".join(f"{k}={v}" for k, v in shape.items())
        print(f"{family:12s} {size:7s} {text:40s} {rate:10.0f} {achieved / 1e9:8.1f} "
              f"{achieved / peak:8.1%} {achieved / local:9.1%} {nominal / 1e9:8.1f}")
    print("GFLOP/s: training FLOPs as executed; nominal: 3 x forward (GFLOP/s); of peak: against the best "
          "matmul rate of the run; of local: against the best rate measured just before/after the row "
          "(closer under a varying load)")
    return 0


if __name__ == "__main__":
    raise SystemExit(run_script(main))
