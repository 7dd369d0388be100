"""Replicates of one point trained together: `train_group(plans, dataset) -> [TrainResult | RunEnded, …]`.

The plans of a group share everything that fixes the network and the loop (`SHARED`: family, shape, steps, batch
size, validation points, data, device) and may differ in seed, learning rate, weight decay, warm-up fraction and
clipping norm. Each replicate is what `study.training.train(plan, dataset)` would train alone, to float
tolerance: its network initialised under `torch.manual_seed(plan.seed)`, its minibatches (and augmentations)
from its own generator seeded by `plan.seed`, drawn `DRAW_AHEAD` steps at a time, the same schedule, per-replicate
gradient clipping and AdamW. Only the arithmetic is shared:

- `fold` (the default where the family allows it): one stacked network (`study.stacked_modules`) on the R
  minibatches concatenated into one batch of R·B samples; the parameters of all replicates live in one
  (R, P) tensor, their gradients in another: clipping is two ops over all replicates, AdamW torch's fused
  kernel once per replicate row.
- `vmap`: `torch.func.functional_call` under `torch.func.vmap` over the same (R, P) parameters. Slower than
  `fold` where measured (benchmarks/replicates.py) and impossible for GATr (its custom autograd functions have
  no vmap rule); kept as the generic path for families `fold` cannot take.
- `loop`: the replicates one after another through `train` (families neither path takes; a resume state
  that mixes finished and running replicates).
`method="auto"` takes the first that works in that order.

A replicate whose training loss becomes NaN/inf (checked every `CHECK_EVERY` steps, at each validation and at
the end, as `train` does) or whose validation loss does, stops there: its entry in the result is the
`DivergenceError` `train` would raise (the first bad step), and the others go on without it (the group is
restacked without its row). Any other exception fails the whole group and propagates.

Time: the group's wall time is shared out equally among the replicates alive at each step (and its evaluations
among those evaluated), so `train_seconds`/`wall_seconds` of the replicates add up to the group's. A time cap
(`plan.time_cap_seconds`) applies to a replicate's share: one whose share passes it stops there with the
`TimeCapError` `train` raises (the group goes on without it), so a group of R may run up to R times the cap.

Checkpoints: once `min(plan.checkpoint_seconds)` has passed since the last one (or the start), after a step
that is not the last, `checkpoint(state)` receives a group state `{"version", "step", "curve", "replicas": [entry
per plan]}` (`curve`: (step, best validation loss among the replicates) so far, the metric Tune keeps with the
checkpoint, `study.checkpoint.checkpoint_metrics`) whose entry is, per replicate, the state `train` itself saves
(`study.training._state`: loadable by `train(plan, dataset, resume=entry)` alone), `{"failed": [step, loss]}` for
one that diverged, `{"capped": [step, seconds]}` for one past its time cap, or (loop method)
`{"done": {…TrainResult fields…}}` / None (not started). `train_group(plans, dataset, resume=state)` continues
exactly: no replicate is trained twice or lost, a failed one is returned failed again, and a state of the same
plans taken by the same method ends like the uninterrupted group (the same operations on the same values: the
tests find them equal to 1e-12).
"""

from __future__ import annotations

import copy
import dataclasses
import math
import time
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import torch

from study.records import TrainResult, TrialPlan
from study.stacked_modules import Unstackable, stack_network
from study.training import (CHECK_EVERY, DRAW_AHEAD, EVAL_BATCH, DivergenceError, RunEnded, TimeCapError,
                            _fast_optimizer, _restore, _state, _subset, build, default_task, eval_steps, lr_factor,
                            train, warmup_steps)
from study.models.registry import get_family

GROUP_STATE_VERSION = 1
METHODS = ("auto", "fold", "vmap", "loop")
# What every plan of a group shares (the network, the loop and its validations, the data, where it runs).
SHARED = ("family", "shape", "steps", "batch_size", "evals", "val_samples", "threads", "device", "train_size",
          "eval_at", "model", "task", "sample")
BETAS, EPS = (0.9, 0.999), 1e-8        # torch.optim.AdamW's defaults, as `train` uses them
# torch's fused AdamW kernel (what `train`'s AdamW(fused=True) calls), applied to one replicate's row at a time:
# one pass over the row instead of about ten for the same formula in plain ops (7-12x faster at 0.3-1.6M params)
_FUSED_ADAMW = getattr(torch, "_fused_adamw_", None)

Report = Callable[[int, int, float], None]   # (replicate index in plans, step, val loss)

# The (R, P) parameter rows are viewed per parameter as (R, *shape) with a row stride of P; autograd warns that
# such a gradient "does not obey the layout contract" (it accumulates into it in place, which is the point).
LAYOUT_WARNING = "grad and param do not obey the gradient layout contract"


# Where stacking pays on a CPU core (benchmarks/replicates.py, 1 thread, two runs): runs whose step is small
# enough that per-op overhead dominates (the smallest shapes of studies/cpu.toml, 4e6-5e7 FLOPs per step) gain
# 1.7-2.1x at 4 replicates and 1.9-2.5x at 8; runs nearer their matmul rate (the middle and largest shapes,
# 3e8-3e10 FLOPs per step) gain at most 5% and lose up to 46% (GATr's largest at 8): R times the activations fall
# out of cache. Unmeasured on GPUs.
CPU_STACK_MAX_STEP_FLOPS = 1e8


def worth_stacking(plan: TrialPlan) -> bool:
    """Whether replicates of `plan` should train stacked (measured for CPUs only: False on other devices)."""
    return torch.device(plan.device).type == "cpu" and plan.step_flops < CPU_STACK_MAX_STEP_FLOPS


def group_key(plan: TrialPlan) -> tuple:
    """What plans must share to train in one group (hashable): plans with equal keys can be grouped."""
    return tuple((name, _hashable(getattr(plan, name))) for name in SHARED)


def train_group(plans: Sequence[TrialPlan], dataset, *, report: Report | None = None,
                checkpoint: Callable[[dict[str, Any]], None] | None = None, resume: dict[str, Any] | None = None,
                method: str = "auto") -> list[TrainResult | RunEnded]:
    """Train the replicates `plans` together; per plan, in order, one `TrainResult` or `RunEnded` (diverged, or
    past its time cap).

    `report(i, step, val_loss)` after each periodic validation of replicate i; `checkpoint(state)` and `resume`
    as in the module docstring (`state` holds live tensors: serialise it before returning)."""
    plans = list(plans)
    _check_group(plans, method)
    entries = _entries(resume, plans)
    running = [e for e in entries if e is None or "step" in e]
    uniform = all(e is None for e in running) or len({e["step"] if e else 0 for e in running}) == 1
    if method == "loop" or not uniform or any(e is not None and "done" in e for e in entries):
        return _train_loop(plans, dataset, report, checkpoint, entries)
    curve = [(int(s), float(v)) for s, v in (resume or {}).get("curve", [])]
    if method == "auto":
        for candidate in ("fold", "vmap"):
            try:
                return _Group(plans, dataset, entries, candidate, curve=curve).run(report, checkpoint)
            except Unstackable:
                continue
        return _train_loop(plans, dataset, report, checkpoint, entries)
    return _Group(plans, dataset, entries, method, curve=curve).run(report, checkpoint)


def restored_results(state: dict[str, Any], plans: Sequence[TrialPlan]) -> list[TrainResult | RunEnded | None]:
    """What a group state already settles, per plan: a failure, a finished result (loop method) or None."""
    out = []
    for entry, plan in zip(state["replicas"], plans):
        if entry is not None and ("failed" in entry or "capped" in entry):
            out.append(_ended(entry, plan))
        elif entry is not None and "done" in entry:
            out.append(_result_from(entry["done"]))
        else:
            out.append(None)
    return out


@dataclass
class _Replica:
    """One replicate inside a group: its plan, its own network (synchronised from the group's rows on demand),
    its minibatch generator and its bookkeeping."""

    index: int
    plan: TrialPlan
    model: torch.nn.Module
    generator: torch.Generator
    warmup: int
    curve: list = field(default_factory=list)
    seconds: float = 0.0
    draws: torch.Tensor | None = None      # (block, B) indices drawn ahead, when resumed inside a block
    losses: torch.Tensor | None = None     # (steps,) training losses restored from a checkpoint
    exp_avg: torch.Tensor | None = None    # (P,) AdamW moments restored from a checkpoint
    exp_avg_sq: torch.Tensor | None = None


class _Group:
    """The replicates alive, their parameters as (R, P) rows, the stacked forward and the loop."""

    def __init__(self, plans: list[TrialPlan], dataset, entries: list, method: str, *, curve: list = ()):
        self.created = time.perf_counter()      # building the replicates counts in their time, as in `train`
        first = plans[0]
        torch.set_num_threads(max(1, int(first.threads)))
        self.device = torch.device(first.device)
        self.autocast = self.device.type == "cuda"
        self.task = first.task if first.task is not None else default_task()
        family = first.model if first.model is not None else get_family(first.family)
        self.augment = bool(family.augment)
        self.augment_options = dict(getattr(family, "augment_options", ()))   # e.g. no translations
        self.method = method
        self.steps, self.batch = first.steps, first.batch_size
        self.train_split = _subset(dataset.train, first.train_size).to(self.device)
        self.probe = _subset(dataset.val, first.val_samples).to(self.device)
        self.dataset = dataset
        self.checkpoints = set(first.eval_at or eval_steps(self.steps, first.evals))
        self.interval = min(p.checkpoint_seconds for p in plans)
        self.results: list[TrainResult | RunEnded | None] = [None] * len(plans)
        self.curve: list[tuple[int, float]] = list(curve)   # (step, best validation loss of the replicates)
        self.done = 0
        self.alive: list[_Replica] = []
        alive = []
        for i, (plan, entry) in enumerate(zip(plans, entries)):
            if entry is not None and ("failed" in entry or "capped" in entry):
                self.results[i] = _ended(entry, plan)
                continue
            alive.append(self._replica(i, plan, entry))
        self.names = [name for name, p in alive[0].model.named_parameters() if p.requires_grad] if alive else []
        if alive:
            self._stack(alive, self._rows(alive), step=self.done)

    def _replica(self, index: int, plan: TrialPlan, entry: dict | None) -> _Replica:
        generator = torch.Generator().manual_seed(plan.seed)
        torch.manual_seed(plan.seed)                   # parameter initialisation, as in `train`
        model = build(plan).to(self.device)
        rep = _Replica(index, plan, model, generator, warmup_steps(plan.steps, plan.warmup_fraction))
        if entry is not None:
            params = [p for p in model.parameters() if p.requires_grad]
            optimizer = torch.optim.AdamW(params, lr=plan.lr, weight_decay=plan.weight_decay,
                                          **_fast_optimizer(self.device))
            losses = torch.empty(plan.steps, device=self.device)
            step, seconds, _, curve, draws = _restore(entry, plan, model, optimizer, generator, losses, self.device)
            rep.seconds, rep.curve, rep.draws, rep.losses = seconds, curve, draws, losses[:step]
            rep.exp_avg = torch.cat([optimizer.state[p]["exp_avg"].flatten() for p in params])
            rep.exp_avg_sq = torch.cat([optimizer.state[p]["exp_avg_sq"].flatten() for p in params])
            self.done = step
        return rep

    def _rows(self, alive: list[_Replica]) -> dict[str, torch.Tensor]:
        """The (R, P) tensors of a fresh or resumed group: parameters, AdamW moments, losses, drawn indices."""
        flat = torch.stack([torch.cat([p.detach().flatten() for p in r.model.parameters() if p.requires_grad])
                            for r in alive])
        zeros = torch.zeros_like(flat)
        rows = {"params": flat,
                "exp_avg": torch.stack([r.exp_avg for r in alive]) if alive[0].exp_avg is not None else zeros,
                "exp_avg_sq": torch.stack([r.exp_avg_sq for r in alive]) if alive[0].exp_avg_sq is not None
                else zeros.clone(),
                "losses": torch.empty(self.steps, len(alive), device=self.device)}
        if self.done:
            rows["losses"][: self.done] = torch.stack([r.losses for r in alive], dim=1)
        if alive[0].draws is not None:
            rows["draws"] = torch.stack([r.draws for r in alive], dim=1)     # (block, R, B)
        return rows

    def _stack(self, alive: list[_Replica], rows: dict[str, torch.Tensor], *, step: int) -> None:
        """(Re)build the group's tensors and stacked forward for the replicates `alive` (their rows in `rows`)."""
        self.alive = alive
        r = len(alive)
        self.params = rows["params"].contiguous()
        self.grads = torch.zeros_like(self.params)
        self.exp_avg, self.exp_avg_sq = rows["exp_avg"].contiguous(), rows["exp_avg_sq"].contiguous()
        self.losses = rows["losses"]
        self.draws = rows.get("draws")
        self.step_count = step
        self.step_tensors = [torch.tensor(float(step), dtype=torch.float32, device=self.device) for _ in alive]
        column = lambda values: torch.tensor(values, dtype=self.params.dtype, device=self.device).unsqueeze(1)
        self.lr = column([a.plan.lr for a in alive])
        self.weight_decay = column([a.plan.weight_decay for a in alive])
        self.clip = column([a.plan.grad_clip for a in alive])
        shapes = {name: p.shape for name, p in alive[0].model.named_parameters()}
        self.layout, offset = {}, 0
        for name in self.names:
            n = math.prod(shapes[name])
            self.layout[name] = (offset, n, tuple(shapes[name]))
            offset += n
        leaves = {}
        for name, (off, n, shape) in self.layout.items():
            leaf = self.params[:, off : off + n].view(r, *shape).detach().requires_grad_()
            leaf.grad = self.grads[:, off : off + n].view(r, *shape)
            leaves[name] = leaf
        self.leaves = leaves
        template = copy.deepcopy(alive[0].model)
        if self.method == "fold":
            self.network = stack_network(template, leaves.__getitem__)
            self.forward = self.network
        elif self.method == "vmap":
            self.forward = self._vmap_forward(template, leaves)
        else:
            raise ValueError(f"unknown stacking method {self.method!r}; use one of {METHODS}")

    def _vmap_forward(self, template: torch.nn.Module, leaves: dict[str, torch.Tensor]):
        from torch.func import functional_call, vmap

        buffers = dict(template.named_buffers())
        r = len(self.alive)

        def one(params, *inputs):
            return functional_call(template, (params, buffers), inputs)

        batched = vmap(one)

        def forward(*inputs):
            with warnings.catch_warnings():   # CPU attention has no batching rule: vmap loops over it, and says so
                warnings.filterwarnings("ignore", message="There is a performance drop because we have not yet")
                out = batched(leaves, *(t.reshape(r, -1, *t.shape[1:]) for t in inputs))
            return out.reshape(-1, *out.shape[2:])

        try:   # a family with custom autograd functions (GATr) fails here: no vmap rule
            with torch.no_grad():
                forward(*(t[:1].repeat(r, *([1] * (t.dim() - 1))) for t in self.task.batch(self.probe, slice(0, 1))[0]))
        except RuntimeError as exc:
            raise Unstackable(f"vmap: {exc}") from exc
        return forward

    # ---------------------------------------------------------------- the loop

    def run(self, report: Report | None, checkpoint) -> list[TrainResult | RunEnded]:
        last_save = time.perf_counter()
        last = self.created
        resumed_from = self.done
        checked = self.done
        n_train = len(self.train_split)
        for step in range(self.done + 1, self.steps + 1):
            if not self.alive:
                break
            r, b = len(self.alive), self.batch
            if (step - 1) % DRAW_AHEAD == 0:
                block = min(DRAW_AHEAD, self.steps - step + 1)
                self.draws = torch.stack([torch.randint(n_train, (block, b), generator=a.generator)
                                          for a in self.alive], dim=1).to(self.device)   # (block, R, B)
            index = self.draws[(step - 1) % DRAW_AHEAD].reshape(-1)                      # (R·B,)
            inputs, target = self.task.batch(self.train_split, index)
            if self.augment:
                inputs, target = self._augment(inputs, target, r, b)
            with torch.autocast("cuda", dtype=torch.bfloat16, enabled=self.autocast):
                pred = self.forward(*inputs)
            per_replicate = self.task.errors(pred, target).reshape(r, -1).mean(dim=1)     # (R,)
            self.losses[step - 1] = per_replicate.detach()
            self.grads.zero_()
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message=LAYOUT_WARNING)
                per_replicate.sum().backward()
            self._update(step)
            now = time.perf_counter()
            for a in self.alive:
                a.seconds += (now - last) / r
            last = now
            capped = {c: TimeCapError(step, self.steps, a.seconds, a.plan.time_cap_seconds)
                      for c, a in enumerate(self.alive) if a.seconds > a.plan.time_cap_seconds}
            if capped:                                   # as `train`: the cap is checked right after the update
                self._drop(capped, step)
                if not self.alive:
                    break
            if step in self.checkpoints or step % CHECK_EVERY == 0 or step == self.steps:
                checked = self._check_finite(checked, step)
            if step in self.checkpoints and self.alive:
                self._validate(step, report)
                now = time.perf_counter()
                for a in self.alive:
                    a.seconds += (now - last) / len(self.alive)
                last = now
            if (checkpoint is not None and step < self.steps and self.alive
                    and time.perf_counter() - last_save >= self.interval):
                checked = self._check_finite(checked, step)
                if self.alive:
                    checkpoint(self._group_state(step))
                last_save = time.perf_counter()
        if self.alive:
            self._finish(resumed_from)
        return list(self.results)

    def _augment(self, inputs: tuple, target: torch.Tensor, r: int, b: int):
        """Each replicate's slice augmented with its own generator (as its own run draws them)."""
        parts = [self.task.augment(tuple(t[i * b : (i + 1) * b] for t in inputs), target[i * b : (i + 1) * b],
                                   a.generator, **self.augment_options) for i, a in enumerate(self.alive)]
        return (tuple(torch.cat([p[0][k] for p in parts]) for k in range(len(inputs))),
                torch.cat([p[1] for p in parts]))

    @torch.no_grad()
    def _update(self, step: int) -> None:
        """Per-replicate gradient clipping (the global L2 norm of its row, as `clip_grad_norm_`) and AdamW at its
        own scheduled lr: torch's fused AdamW kernel on each replicate's row (what `train`'s optimizer runs),
        else the same formula in plain ops over all rows."""
        g = self.grads
        norms = torch.linalg.vector_norm(g, dim=1, keepdim=True)                  # (R, 1)
        g.mul_((self.clip / (norms + 1e-6)).clamp_(max=1.0))
        factors = [lr_factor(step - 1, steps=self.steps, warmup=a.warmup) for a in self.alive]
        self.step_count += 1
        beta1, beta2 = BETAS
        if _FUSED_ADAMW is not None and self.device.type in ("cpu", "cuda"):
            for c, (a, factor) in enumerate(zip(self.alive, factors)):
                self.step_tensors[c] += 1
                _FUSED_ADAMW([self.params[c]], [g[c]], [self.exp_avg[c]], [self.exp_avg_sq[c]], [],
                             [self.step_tensors[c]], lr=a.plan.lr * factor, beta1=beta1, beta2=beta2,
                             weight_decay=a.plan.weight_decay, eps=EPS, amsgrad=False, maximize=False,
                             grad_scale=None, found_inf=None)
            return
        lr = self.lr * torch.tensor(factors, dtype=g.dtype, device=g.device).unsqueeze(1)   # (R, 1)
        bias1 = 1 - beta1 ** self.step_count
        bias2_sqrt = math.sqrt(1 - beta2 ** self.step_count)
        self.params.mul_(1 - lr * self.weight_decay)
        self.exp_avg.lerp_(g, 1 - beta1)
        self.exp_avg_sq.mul_(beta2).addcmul_(g, g, value=1 - beta2)
        denom = self.exp_avg_sq.sqrt().div_(bias2_sqrt).add_(EPS)
        self.params.addcdiv_(self.exp_avg * (lr / bias1), denom, value=-1.0)

    def _check_finite(self, checked: int, step: int) -> int:
        """Fail (and drop) every replicate with a non-finite training loss among steps checked+1..step."""
        window = self.losses[checked:step]
        bad = ~torch.isfinite(window)
        if bool(bad.any()):
            failures = {}
            for column in bad.any(dim=0).nonzero().flatten().tolist():
                first = int(bad[:, column].nonzero()[0, 0])
                failures[column] = DivergenceError(checked + first + 1, float(window[first, column]))
            self._drop(failures, step)
        return step

    def _drop(self, failures: dict[int, RunEnded], step: int) -> None:
        """Record the failures of the replicates at these columns and restack the group without them."""
        for column, error in failures.items():
            self.results[self.alive[column].index] = error
        keep = [c for c in range(len(self.alive)) if c not in failures]
        if not keep:
            self.alive = []
            return
        index = torch.tensor(keep, device=self.device)
        rows = {"params": self.params[index], "exp_avg": self.exp_avg[index], "exp_avg_sq": self.exp_avg_sq[index],
                "losses": self.losses[:, index]}
        if self.draws is not None:
            rows["draws"] = self.draws[:, index]
        self._stack([self.alive[c] for c in keep], rows, step=self.step_count)

    def _validate(self, step: int, report: Report | None) -> None:
        values = self._losses_on(self.probe)
        failures = {c: DivergenceError(step, v) for c, v in enumerate(values) if not math.isfinite(v)}
        for c, (a, value) in enumerate(zip(self.alive, values)):
            if c in failures:
                continue
            a.curve.append((step, value))
            if report is not None:
                report(a.index, step, value)
        finite = [v for c, v in enumerate(values) if c not in failures]
        if finite:
            self.curve.append((step, min(finite)))
        if failures:
            self._drop(failures, step)

    def _losses_on(self, split) -> list[float]:
        """Each replicate's task loss over a whole split (`study.training.mse` for all replicates at once: the
        split repeated once per replicate, chunks of EVAL_BATCH // R scenes, sums in float64)."""
        r = len(self.alive)
        chunk = max(1, EVAL_BATCH // r)
        totals, count = torch.zeros(r, dtype=torch.float64, device=self.device), 0
        network = self.network if self.method == "fold" else None
        if network is not None:
            network.eval()
        with torch.inference_mode(), torch.autocast("cuda", dtype=torch.bfloat16, enabled=self.autocast):
            for start in range(0, len(split), chunk):
                inputs, target = self.task.batch(split, slice(start, start + chunk))
                repeat = lambda t: t.repeat(r, *([1] * (t.dim() - 1)))
                errors = self.task.errors(self.forward(*(repeat(t) for t in inputs)), repeat(target))
                totals += torch.sum(errors.reshape(r, -1), dim=1, dtype=torch.float64)
                count += errors.numel() // r
        if network is not None:
            network.train()
        return [float(t) / max(1, count) for t in totals]

    def _sync(self, column: int) -> list[torch.nn.Parameter]:
        """Copy the group's row `column` into that replicate's own network; its trainable parameters."""
        a = self.alive[column]
        params = dict(a.model.named_parameters())
        with torch.no_grad():
            for name, (off, n, shape) in self.layout.items():
                params[name].copy_(self.params[column, off : off + n].view(shape))
        return [params[name] for name in self.names]

    def _group_state(self, step: int) -> dict[str, Any]:
        entries: list[dict | None] = [_settled(result) for result in self.results]
        for c, a in enumerate(self.alive):
            params = self._sync(c)
            optimizer = torch.optim.AdamW(params, lr=a.plan.lr * lr_factor(step - 1, steps=self.steps,
                                                                         warmup=a.warmup),
                                          weight_decay=a.plan.weight_decay, **_fast_optimizer(self.device))
            for p, name in zip(params, self.names):
                off, n, shape = self.layout[name]
                optimizer.state[p] = {
                    "step": torch.tensor(float(self.step_count), dtype=torch.float32, device=self.device),
                    "exp_avg": self.exp_avg[c, off : off + n].view(shape).clone(),
                    "exp_avg_sq": self.exp_avg_sq[c, off : off + n].view(shape).clone()}
            draws = self.draws[:, c].contiguous() if self.draws is not None else None
            entries[a.index] = _state(a.plan, step, a.model, optimizer, a.generator, draws,
                                      self.losses[:, c].contiguous(), a.curve, a.seconds)
        curve = [list(point) for point in self.curve]
        return {"version": GROUP_STATE_VERSION, "step": step, "curve": curve, "replicas": entries}

    def _finish(self, resumed_from: int) -> None:
        """Final losses over the whole val and test splits, the equivariance error, one result per replicate."""
        start = time.perf_counter()
        val_split, test_split = self.dataset.val.to(self.device), self.dataset.test.to(self.device)
        val, test = self._losses_on(val_split), self._losses_on(test_split)
        shared = (time.perf_counter() - start) / len(self.alive)
        n_train = len(self.train_split)
        for c, a in enumerate(self.alive):
            own = time.perf_counter()
            params = self._sync(c)
            equi = float(self.task.equivariance_error(a.model, val_split,
                                                      torch.Generator().manual_seed(a.plan.seed + 1)))
            self.results[a.index] = TrainResult(
                val_loss=val[c], test_loss=test[c], train_loss=float(self.losses[-1, c]), equivariance_error=equi,
                params=sum(p.numel() for p in params), steps=self.steps, samples=self.steps * self.batch,
                epochs=self.steps * self.batch / n_train, train_seconds=a.seconds,
                wall_seconds=a.seconds + shared + time.perf_counter() - own, curve=tuple(a.curve),
                resumed_from=resumed_from)


def _train_loop(plans, dataset, report, checkpoint, entries) -> list[TrainResult | RunEnded]:
    """The fallback: each replicate alone through `train`, the group state carrying finished results."""
    results: list[TrainResult | RunEnded | None] = list(restored_results({"replicas": entries}, plans))
    for i, plan in enumerate(plans):
        if results[i] is not None:
            continue

        def save(state, i=i):
            group = [_settled(r) for r in results]
            group[i] = state
            checkpoint({"version": GROUP_STATE_VERSION, "step": state["step"], "curve": state["curve"],
                        "replicas": group})

        try:
            results[i] = train(plan, dataset, resume=entries[i],
                               report=None if report is None else (lambda s, v, i=i: report(i, s, v)),
                               checkpoint=None if checkpoint is None else save)
        except RunEnded as error:
            results[i] = error
    return results


def _settled(result) -> dict | None:
    if isinstance(result, DivergenceError):
        return {"failed": [result.step, result.loss]}
    if isinstance(result, TimeCapError):
        return {"capped": [result.step, result.seconds]}
    if isinstance(result, TrainResult):
        done = dataclasses.asdict(result)
        done["curve"] = [list(point) for point in result.curve]
        return {"done": done}
    return None


def _ended(entry: dict, plan: TrialPlan) -> RunEnded:
    """The failure a group state's entry records (diverged or past the time cap), as the run alone raised it."""
    if "capped" in entry:
        step, seconds = entry["capped"]
        return TimeCapError(int(step), plan.steps, float(seconds), plan.time_cap_seconds)
    return DivergenceError(int(entry["failed"][0]), float(entry["failed"][1]))


def _result_from(done: dict) -> TrainResult:
    return TrainResult(**{**done, "curve": tuple((int(s), float(v)) for s, v in done["curve"])})


def _entries(resume: dict[str, Any] | None, plans: list[TrialPlan]) -> list[dict | None]:
    if resume is None:
        return [None] * len(plans)
    if resume.get("version") != GROUP_STATE_VERSION:
        raise ValueError(f"group state version {resume.get('version')!r}, expected {GROUP_STATE_VERSION}")
    entries = list(resume["replicas"])
    if len(entries) != len(plans):
        raise ValueError(f"group state of {len(entries)} replicates for {len(plans)} plans")
    return entries


def _check_group(plans: list[TrialPlan], method: str) -> None:
    if method not in METHODS:
        raise ValueError(f"unknown stacking method {method!r}; use one of {METHODS}")
    if not plans:
        raise ValueError("train_group needs at least one plan")
    key = group_key(plans[0])
    for plan in plans[1:]:
        if group_key(plan) != key:
            differ = [name for name in SHARED if _hashable(getattr(plan, name)) != _hashable(getattr(plans[0], name))]
            raise ValueError(f"plans of one group must share {', '.join(differ)}")


def _hashable(value: Any) -> Any:
    if isinstance(value, dict):
        return tuple(sorted((k, _hashable(v)) for k, v in value.items()))
    if isinstance(value, (list, tuple)):
        return tuple(_hashable(v) for v in value)
    try:
        hash(value)
    except TypeError:
        return id(value)
    return value
