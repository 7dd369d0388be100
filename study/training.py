"""One training run: (family, shape, lr, steps, batch, dataset) -> metrics.

AdamW with a linear warm-up then cosine decay whose length is exactly `steps`, gradient clipping,
periodic validation (reported through a callback: the learning curve), final val/test loss, and the
equivariance error of the trained model. Minibatches come from a per-run seeded generator, so a run is
reproducible from its arguments.
"""

from __future__ import annotations

import math
import time
from typing import Callable

import torch

from study.benchmark.format import Dataset, Split


class DivergenceError(RuntimeError):
    """The training loss became NaN or infinite: the run (trial) fails with this reason."""

    def __init__(self, step: int, loss: float):
        super().__init__(f"diverged at step {step}: training loss {loss}")
        self.step = step
        self.loss = loss


def lr_factor(step: int, *, steps: int, warmup: int) -> float:
    """Multiplier of the peak lr before update `step` (0-based): linear warm-up, cosine decay to 0 at `steps`."""
    if step < warmup:
        return (step + 1) / warmup
    decay = max(1, steps - warmup)
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, (step - warmup) / decay)))


def eval_steps(steps: int, evals: int) -> list[int]:
    """Steps after which validation runs: `evals` evenly spaced points ending at the last step."""
    evals = max(1, min(evals, steps))
    return sorted({round(steps * (i + 1) / evals) for i in range(evals)})


def mse(model: torch.nn.Module, split: Split, *, batch_size: int = 1024, autocast: bool = False) -> float:
    """Mean squared error of the predicted marker positions over a split (no gradients)."""
    model.eval()
    total, count = 0.0, 0
    with torch.no_grad(), torch.autocast("cuda", dtype=torch.bfloat16, enabled=autocast):
        for start in range(0, len(split), batch_size):
            part = split[start:start + batch_size]
            pred = model(part.pos0, part.vel0, part.props)                  # (B, K, M, 3)
            total += torch.sum((pred.float() - part.posT) ** 2).item()
            count += part.posT.numel()
    model.train()
    return total / max(1, count)


def train(
    family: str,
    shape: dict,
    *,
    lr: float,
    steps: int,
    batch_size: int,
    dataset: Dataset,
    seed: int = 0,
    weight_decay: float = 0.01,
    warmup_fraction: float = 0.05,
    grad_clip: float = 1.0,
    evals: int = 5,
    val_samples: int = 0,   # scenes of the val split for the periodic evaluations (0 = all)
    threads: int | None = None,
    device: str | torch.device | None = None,
    report: Callable[[int, float], None] | None = None,
) -> dict:
    """Train one model for exactly `steps` steps; return final metrics (losses, wall seconds, equivariance error).

    `report(step, val_loss)` is called after each periodic validation. Raises DivergenceError on NaN/inf loss.
    """
    from study.benchmark.transforms import random_e3, transform_batch
    from study.models import build_model, equivariance_error, get_family

    if threads is not None:
        torch.set_num_threads(max(1, int(threads)))
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    autocast = device.type == "cuda"
    start = time.perf_counter()
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)  # parameter initialisation
    augment = bool(get_family(family).augment)
    model = build_model(family, **shape).to(device)
    params = sum(p.numel() for p in model.parameters() if p.requires_grad)
    train_split = dataset.train.to(device)
    probe_split = _subset(dataset.val, val_samples).to(device)  # periodic validation (learning curve)
    val_split, test_split = dataset.val.to(device), dataset.test.to(device)  # final losses: whole splits
    n_train = len(train_split)

    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    warmup = max(1, round(warmup_fraction * steps))
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: lr_factor(s, steps=steps, warmup=warmup))
    checkpoints = set(eval_steps(steps, evals))
    curve: list[tuple[int, float]] = []
    check_every = 1 if device.type == "cpu" else 25  # .item() syncs a GPU: check finiteness less often there
    model.train()
    for step in range(1, steps + 1):
        index = torch.randint(n_train, (batch_size,), generator=generator).to(device)
        pos0, vel0, props, posT = (train_split.pos0[index], train_split.vel0[index],
                                   train_split.props[index], train_split.posT[index])  # (B, K, M, 3), (B, K, P)
        if augment:
            R, t = random_e3(batch_size, generator=generator)                      # (B, 3, 3), (B, 3)
            pos0, vel0, props, posT = transform_batch(R.to(device), t.to(device), pos0, vel0, props, posT)
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=autocast):
            pred = model(pos0, vel0, props)                                         # (B, K, M, 3)
        loss = torch.mean((pred.float() - posT) ** 2)
        if step % check_every == 0 or step == steps:
            value = loss.item()
            if not math.isfinite(value):
                raise DivergenceError(step, value)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
        optimizer.step()
        scheduler.step()
        if step in checkpoints:
            val = mse(model, probe_split, autocast=autocast)
            if not math.isfinite(val):
                raise DivergenceError(step, val)
            curve.append((step, val))
            if report is not None:
                report(step, val)
    train_seconds = time.perf_counter() - start
    val_loss = mse(model, val_split, autocast=autocast)
    test_loss = mse(model, test_split, autocast=autocast)
    probe = val_split[: min(64, len(val_split))]
    equi = float(equivariance_error(model, probe.pos0, probe.vel0, probe.props,
                                    generator=torch.Generator().manual_seed(seed + 1)))
    return {
        "val_loss": val_loss,
        "test_loss": test_loss,
        "train_loss": float(loss.item()),
        "equivariance_error": equi,
        "params": params,
        "steps": steps,
        "samples": steps * batch_size,
        "train_seconds": train_seconds,
        "wall_seconds": time.perf_counter() - start,
        "curve": curve,
    }


def _subset(split: Split, samples: int) -> Split:
    """The first `samples` scenes of a split (all when 0 or larger than the split)."""
    return split if samples <= 0 or samples >= len(split) else split[:samples]
