"""One training run: `train(plan, dataset) -> TrainResult`, the worker's whole job.

AdamW with a linear warm-up then cosine decay whose length is exactly `plan.steps`, gradient clipping
at `plan.grad_clip`, periodic validation on a fixed probe subset of the val split (reported through a
callback: the learning curve), final val/test loss over the whole splits, and the equivariance error
of the trained model. Minibatches (and augmentations) come from a per-run seeded generator, so a run is
reproducible from its plan.

Small shapes are dominated by per-step overhead, so the loop keeps it low (measured by
benchmarks/small_trials.py): a fused AdamW, the learning rate written into the optimiser directly, a
foreach gradient-norm clip, minibatch indices drawn for many steps at once, and no host sync per step:
the training loss is kept in a tensor and checked for NaN/inf every CHECK_EVERY steps, at each
validation and at the end; the first non-finite step is the one reported.

Checkpoints: when `plan.checkpoint_seconds` of wall time have passed since the last one (or the start),
the loop hands `checkpoint(state)` everything needed to continue exactly: the model, the optimiser, the
step, the minibatch generator's state and the indices it already drew, the training losses so far and
the learning curve. `train(plan, dataset, resume=state)` continues from there: the same minibatches,
the same updates, and a result that counts the whole run once (steps, samples, the curve, the time).
"""

from __future__ import annotations

import math
import time
from typing import Any, Callable

import torch

from study.benchmark.task import task as rigid_body
from study.models.registry import RIGID_BODY_SAMPLE, get_family, validate_shape
from study.records import TrainResult, TrialPlan

CHECK_EVERY = 100       # steps between finiteness checks of the training loss (a diverged run wastes < this)
DRAW_AHEAD = 256        # steps whose minibatch indices are drawn in one call
EVAL_BATCH = 4096       # scenes per forward pass in validation
STATE_VERSION = 1       # layout of the checkpoint state; a state of another version is refused


class RunEnded(RuntimeError):
    """A run that ended before its budget for a reason a retry would repeat: its trial FAILs with the message."""


class DivergenceError(RunEnded):
    """The training loss became NaN or infinite: the run (trial) fails with this reason."""

    def __init__(self, step: int, loss: float):
        super().__init__(f"diverged at step {step}: training loss {loss}")
        self.step = step
        self.loss = loss


TIME_CAP = "time cap"   # how the fail reason of a run stopped by its time cap begins


class TimeCapError(RunEnded):
    """The training loop passed `plan.time_cap_seconds`: the run stops untrained (never COMPLETE)."""

    def __init__(self, step: int, steps: int, seconds: float, cap: float):
        super().__init__(f"{TIME_CAP} of {cap:g} s passed after step {step} of {steps} ({seconds:.1f} s of training)")
        self.step = step
        self.seconds = seconds


def lr_factor(step: int, *, steps: int, warmup: int) -> float:
    """Multiplier of the peak lr before update `step` (0-based): linear warm-up, cosine decay to 0 at `steps`."""
    if step < warmup:
        return (step + 1) / warmup
    decay = max(1, steps - warmup)
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, (step - warmup) / decay)))


def warmup_steps(steps: int, fraction: float) -> int:
    """Warm-up length: `fraction` of the run, at least one step."""
    return max(1, round(fraction * steps))


def eval_steps(steps: int, evals: int) -> list[int]:
    """Steps after which validation runs: `evals` evenly spaced points ending at the last step."""
    evals = max(1, min(evals, steps))
    return sorted({round(steps * (i + 1) / evals) for i in range(evals)})


def epoch_eval_steps(steps: int, *, batch_size: int, train_size: int, evals: int) -> tuple[int, ...]:
    """Steps that end whole epochs of `train_size` scenes, at up to `evals` log-spaced epochs (1, 2, … up to
    the last whole epoch of the run): where a data study validates and records its per-epoch curve."""
    epochs = steps * batch_size // train_size
    if epochs < 1:
        return ()
    picks = sorted({round(epochs ** (i / max(1, evals - 1))) for i in range(evals)} if evals > 1 else {epochs})
    return tuple(sorted({math.ceil(e * train_size / batch_size) for e in picks}))


def mse(model: torch.nn.Module, split, *, task=None, batch_size: int = EVAL_BATCH, autocast: bool = False) -> float:
    """The task's loss over a whole split (the mean of its per-element errors, summed in float64; no gradients).
    For the rigid-body task (the default): the mean squared error of the predicted marker positions."""
    task = task or default_task()
    was_training = model.training
    model.eval()
    total, count = None, 0
    with torch.inference_mode(), torch.autocast("cuda", dtype=torch.bfloat16, enabled=autocast):
        for start in range(0, len(split), batch_size):
            inputs, target = task.batch(split, slice(start, start + batch_size))
            errors = task.errors(model(*inputs), target)                    # e.g. (B, K, M, 3)
            part = torch.sum(errors, dtype=torch.float64)
            total = part if total is None else total + part
            count += errors.numel()
    model.train(was_training)
    return float(total if total is not None else 0.0) / max(1, count)


def default_task():
    """The built-in rigid-body task (plans and callers that name none)."""
    return rigid_body


def build(plan: TrialPlan) -> torch.nn.Module:
    """The plan's network: its family object (or the installed family of its name) for its task's sample."""
    family = plan.model if plan.model is not None else get_family(plan.family)
    sample = dict(plan.sample) if plan.sample else dict(RIGID_BODY_SAMPLE)
    return family.build(sample, validate_shape(family, **plan.shape))


def train(plan: TrialPlan, dataset, *, report: Callable[[int, float], None] | None = None,
          checkpoint: Callable[[dict[str, Any]], None] | None = None,
          resume: dict[str, Any] | None = None) -> TrainResult:
    """Train `plan` for exactly `plan.steps` steps on `dataset.train`; final losses on the whole val/test splits.

    `report(step, val_loss)` is called after each periodic validation. Raises DivergenceError on NaN/inf loss,
    TimeCapError once the training loop (earlier attempts included) passes `plan.time_cap_seconds`.
    `checkpoint(state)` is called after a step (never the last) once `plan.checkpoint_seconds` have passed
    since the previous call or the start; `state` holds live tensors: serialise it (`torch.save`) before
    returning. `resume` is such a state of the same plan: the run continues after its step and reports
    only the validations after it.
    """
    start = time.perf_counter()
    torch.set_num_threads(max(1, int(plan.threads)))
    device = torch.device(plan.device)
    autocast = device.type == "cuda"
    generator = torch.Generator().manual_seed(plan.seed)
    torch.manual_seed(plan.seed)  # parameter initialisation
    task = plan.task if plan.task is not None else default_task()
    family = plan.model if plan.model is not None else get_family(plan.family)
    augment, augment_options = bool(family.augment), dict(getattr(family, "augment_options", ()))
    model = build(plan).to(device)
    net = torch.compile(model) if plan.compile else model   # the same parameters; validation runs `model` eagerly
    parameters = [p for p in model.parameters() if p.requires_grad]
    train_split = _subset(dataset.train, plan.train_size).to(device)   # a data study's first train_size scenes
    probe = _subset(dataset.val, plan.val_samples).to(device)   # periodic validation (learning curve)
    n_train, steps, batch = len(train_split), plan.steps, plan.batch_size

    optimizer = torch.optim.AdamW(parameters, lr=plan.lr, weight_decay=plan.weight_decay,
                                  **_fast_optimizer(device))
    warmup = warmup_steps(steps, plan.warmup_fraction)
    checkpoints = set(plan.eval_at or eval_steps(steps, plan.evals))
    losses = torch.empty(steps, device=device)       # training loss per step, checked without per-step syncs
    checked = 0                                      # steps 1..checked are known finite
    curve: list[tuple[int, float]] = []
    done, before = 0, 0.0                            # steps and seconds of earlier attempts (resume)
    if resume is not None:
        done, before, checked, curve, draws = _restore(resume, plan, model, optimizer, generator, losses, device)
    last_save = time.perf_counter()
    model.train()
    for step in range(done + 1, steps + 1):
        if (step - 1) % DRAW_AHEAD == 0:
            draws = torch.randint(n_train, (min(DRAW_AHEAD, steps - step + 1), batch), generator=generator).to(device)
        index = draws[(step - 1) % DRAW_AHEAD]
        inputs, target = task.batch(train_split, index)          # rigid body: (pos0, vel0, props), posT
        if augment:
            inputs, target = task.augment(inputs, target, generator, **augment_options)
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=autocast):
            pred = net(*inputs)                                                     # e.g. (B, K, M, 3)
        loss = torch.mean(task.errors(pred, target))
        losses[step - 1] = loss.detach()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(parameters, plan.grad_clip, foreach=True)
        factor = lr_factor(step - 1, steps=steps, warmup=warmup)
        for group in optimizer.param_groups:
            group["lr"] = plan.lr * factor
        optimizer.step()
        if before + time.perf_counter() - start > plan.time_cap_seconds:
            raise TimeCapError(step, steps, before + time.perf_counter() - start, plan.time_cap_seconds)
        if step in checkpoints or step % CHECK_EVERY == 0 or step == steps:
            checked = _check_finite(losses, checked, step)
        if step in checkpoints:
            val = mse(model, probe, task=task, autocast=autocast)
            if not math.isfinite(val):
                raise DivergenceError(step, val)
            curve.append((step, val))
            if report is not None:
                report(step, val)
        if checkpoint is not None and step < steps and time.perf_counter() - last_save >= plan.checkpoint_seconds:
            checked = _check_finite(losses, checked, step)   # never save a diverged state
            checkpoint(_state(plan, step, model, optimizer, generator, draws, losses, curve,
                              before + time.perf_counter() - start))
            last_save = time.perf_counter()
    train_seconds = before + time.perf_counter() - start
    val_split, test_split = dataset.val.to(device), dataset.test.to(device)   # final losses: whole splits
    val_loss = mse(model, val_split, task=task, autocast=autocast)
    test_loss = mse(model, test_split, task=task, autocast=autocast)
    equi = float(task.equivariance_error(model, val_split, torch.Generator().manual_seed(plan.seed + 1)))
    return TrainResult(
        val_loss=val_loss,
        test_loss=test_loss,
        train_loss=float(losses[-1]),
        equivariance_error=equi,
        params=sum(p.numel() for p in parameters),
        steps=steps,
        samples=steps * batch,
        epochs=steps * batch / n_train,
        train_seconds=train_seconds,
        wall_seconds=before + time.perf_counter() - start,
        curve=tuple(curve),
        resumed_from=done,
    )


def _plan_key(plan: TrialPlan) -> dict[str, Any]:
    """What a checkpoint must have been trained with to continue `plan` (not threads, device or interval)."""
    return {"family": plan.family, "shape": dict(plan.shape), "lr": plan.lr, "steps": plan.steps,
            "batch_size": plan.batch_size, "seed": plan.seed, "weight_decay": plan.weight_decay,
            "warmup_fraction": plan.warmup_fraction, "grad_clip": plan.grad_clip, "evals": plan.evals,
            "val_samples": plan.val_samples, "train_size": plan.train_size, "eval_at": list(plan.eval_at)}


def _state(plan: TrialPlan, step: int, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
           generator: torch.Generator, draws: torch.Tensor, losses: torch.Tensor,
           curve: list[tuple[int, float]], seconds: float) -> dict[str, Any]:
    """The checkpoint after `step`: plain dicts, lists, numbers and tensors (`torch.load(weights_only=True)`)."""
    return {
        "version": STATE_VERSION,
        "plan": _plan_key(plan),
        "step": step,
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "generator": generator.get_state(),                  # after this step's draws and augmentation
        "torch_rng": torch.get_rng_state(),
        "draws": draws.cpu() if step % DRAW_AHEAD else None,  # the block the next steps still take indices from
        "losses": losses[:step].cpu(),
        "curve": [list(point) for point in curve],
        "seconds": seconds,
    }


def _restore(state: dict[str, Any], plan: TrialPlan, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
             generator: torch.Generator, losses: torch.Tensor, device: torch.device):
    """Load a checkpoint state into the run's objects; (step, seconds, checked, curve, draws) to continue with."""
    if state.get("version") != STATE_VERSION:
        raise ValueError(f"checkpoint state version {state.get('version')!r}, expected {STATE_VERSION}")
    if state["plan"] != _plan_key(plan):
        raise ValueError(f"checkpoint of another plan: {state['plan']} is not {_plan_key(plan)}")
    step = int(state["step"])
    if not 0 < step < plan.steps:
        raise ValueError(f"checkpoint at step {step} of a {plan.steps}-step run")
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    generator.set_state(state["generator"])
    torch.set_rng_state(state["torch_rng"])
    losses[:step] = state["losses"].to(device)
    draws = state["draws"].to(device) if state["draws"] is not None else None
    curve = [(int(s), float(v)) for s, v in state["curve"]]
    return step, float(state["seconds"]), step, curve, draws


def _fast_optimizer(device: torch.device) -> dict:
    """AdamW implementation flags: fused kernels where torch has them for the device (CPU and CUDA)."""
    return {"fused": True} if device.type in ("cpu", "cuda") else {"foreach": True}


def _check_finite(losses: torch.Tensor, checked: int, step: int) -> int:
    """Raise DivergenceError at the first non-finite loss among steps checked+1..step; return `step`."""
    window = losses[checked:step]
    bad = ~torch.isfinite(window)
    if bool(bad.any()):
        first = int(bad.nonzero()[0, 0])
        raise DivergenceError(checked + first + 1, float(window[first]))
    return step


def _subset(split, samples: int):
    """The first `samples` scenes of a split (all when 0 or larger than the split)."""
    return split if samples <= 0 or samples >= len(split) else split[:samples]
