"""One training run: the typed boundary, and checks of the loop against independent computations.

The schedule, the clipping, the split of the test loss and the augmentation are each checked from
outside the loop: spies on the optimiser (a global step pre-hook sees the lr and the gradients the
update actually uses), the built model captured and evaluated by hand, and an exactly equivariant
oracle model that only scores zero when the targets are moved with the inputs.
"""

from __future__ import annotations

import dataclasses
import io
import math

import pytest
import torch
from torch import nn
from torch.optim.optimizer import register_optimizer_step_pre_hook

import study.training
from study.benchmark import load_dataset
from study.flops import param_count
from study.models import build_model
from study.records import TrainResult, TrialPlan
from study.training import DivergenceError, TimeCapError, eval_steps, lr_factor, train


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return load_dataset(scenes=120, bodies=3, seed=0, cache_dir=tmp_path_factory.mktemp("cache"))


def plan(family="transformer", shape=None, **changes) -> TrialPlan:
    """A small plan; FLOP fields are bookkeeping the loop does not read."""
    fields = dict(family=family, budget=1e9, shape=shape or {"width": 8, "depth": 1}, lr=1e-3, steps=20,
                  batch_size=8, step_flops=0.0, forward_flops=0.0, params=0, seed=0, evals=1, val_samples=0,
                  threads=1)
    return TrialPlan(**(fields | changes))


@pytest.fixture
def optimizer_steps():
    """Every optimizer.step() of the run: (lr of each param group, global L2 norm of the gradients it applies)."""
    seen = []

    def hook(optimizer, args, kwargs):
        grads = [p.grad for group in optimizer.param_groups for p in group["params"] if p.grad is not None]
        norm = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g.double()) for g in grads]))
        seen.append(([group["lr"] for group in optimizer.param_groups], float(norm)))

    handle = register_optimizer_step_pre_hook(hook)
    yield seen
    handle.remove()


def test_schedule_warms_up_linearly_then_decays_to_zero_at_the_last_step():
    steps, warmup = 200, 10
    factors = [lr_factor(s, steps=steps, warmup=warmup) for s in range(steps + 1)]
    assert factors[:warmup] == pytest.approx([(s + 1) / warmup for s in range(warmup)])
    assert factors[warmup] == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(factors[warmup:], factors[warmup + 1:]))
    mid = warmup + (steps - warmup) // 2
    assert factors[mid] == pytest.approx(0.5 * (1 + math.cos(math.pi * (mid - warmup) / (steps - warmup))))
    assert factors[steps] == pytest.approx(0.0, abs=1e-12)


def test_eval_steps_are_spread_and_end_at_the_last_step():
    assert eval_steps(100, 4) == [25, 50, 75, 100]
    assert eval_steps(3, 10) == [1, 2, 3]


def test_the_optimizer_applies_warmup_then_cosine_at_every_step(dataset, optimizer_steps):
    # 200 steps, 10% warm-up = 20 steps: lr(i) = peak (i+1)/20 for i < 20, then peak/2 (1 + cos(pi (i-20)/180))
    peak = 2e-3
    train(plan(steps=200, warmup_fraction=0.1, lr=peak), dataset)
    lrs = [lrs[0] for lrs, _ in optimizer_steps]
    assert len(lrs) == 200
    expected = [peak * (i + 1) / 20 if i < 20 else peak * 0.5 * (1 + math.cos(math.pi * (i - 20) / 180))
                for i in range(200)]
    assert lrs == pytest.approx(expected, rel=1e-9, abs=1e-15)
    assert lrs[0] == pytest.approx(peak / 20) and lrs[19] == pytest.approx(peak) and lrs[20] == pytest.approx(peak)
    assert lrs[110] == pytest.approx(peak / 2)                       # half-way through the cosine
    assert lrs[-1] == pytest.approx(peak * 0.5 * (1 + math.cos(math.pi * 179 / 180)))   # ~7.6e-5 peak: to 0 at 200


def test_gradients_are_clipped_to_the_configured_norm_before_each_update(dataset, optimizer_steps):
    train(plan(steps=12, grad_clip=1e6), dataset)                    # no clipping: the raw gradient norms
    raw = [norm for _, norm in optimizer_steps]
    assert len(raw) == 12 and min(raw) > 1e-2                        # far above the clip below
    optimizer_steps.clear()
    train(plan(steps=12, grad_clip=1e-3), dataset)
    clipped = [norm for _, norm in optimizer_steps]
    assert clipped == pytest.approx([1e-3] * 12, rel=1e-4)           # every update sees exactly the clip norm


class _Captured:
    """Wraps the loop's model builder to keep the module it trains."""

    def __init__(self):
        self.models = []
        self.build = study.training.build

    def __call__(self, plan):
        model = self.build(plan)
        self.models.append(model)
        return model


def _mse_by_hand(model: nn.Module, split) -> float:
    model.eval()
    with torch.no_grad():
        pred = model(split.pos0, split.vel0, split.props).double()
    return float(torch.mean((pred - split.posT.double()) ** 2))


def test_final_losses_are_computed_on_their_own_splits(dataset, monkeypatch):
    # a test split unlike the val split (same inputs, targets moved), so swapping them shows
    shifted = dataclasses.replace(dataset.val, posT=dataset.val.posT + 0.3)
    data = dataclasses.replace(dataset, test=shifted)
    captured = _Captured()
    monkeypatch.setattr(study.training, "build", captured)
    result = train(plan(steps=30), data)
    (model,) = captured.models
    val, test = _mse_by_hand(model, data.val), _mse_by_hand(model, data.test)
    assert abs(test - val) > 0.05
    assert result.val_loss == pytest.approx(val, rel=1e-5)
    assert result.test_loss == pytest.approx(test, rel=1e-5)


class _EquivariantOracle(nn.Module):
    """Predicts the true targets of any E(3)-transformed scene of the dataset, exactly.

    It finds the scene by its invariant props, recovers the E(3) element g from the marker positions
    (an affine least-squares fit, reflections included) and returns g·posT. Inconsistent velocities
    (not rotated by the same g, or translated) are added to the output, so they cost loss too."""

    def __init__(self, data):
        super().__init__()
        splits = (data.train, data.val, data.test)
        for name in ("pos0", "vel0", "props", "posT"):
            self.register_buffer(name + "_all", torch.cat([getattr(s, name) for s in splits]).double())
        self.zero = nn.Parameter(torch.zeros(()))   # something for the optimiser to hold
        self.elements = []                          # recovered (R, t) per call

    def forward(self, pos0, vel0, props):
        B = pos0.shape[0]
        index = torch.cdist(props.reshape(B, -1).double(), self.props_all.reshape(len(self.props_all), -1)).argmin(1)
        ones = torch.ones(B, pos0[0].numel() // 3, 1, dtype=torch.float64)
        source = torch.cat([self.pos0_all[index].reshape(B, -1, 3), ones], -1)         # (B, L, 4)
        affine = torch.linalg.lstsq(source, pos0.reshape(B, -1, 3).double()).solution   # (B, 4, 3): [R^T; t]
        self.elements.append((affine[:, :3].transpose(1, 2), affine[:, 3]))
        target = torch.cat([self.posT_all[index].reshape(B, -1, 3), ones], -1) @ affine
        velocity_error = vel0.reshape(B, -1, 3).double() - self.vel0_all[index].reshape(B, -1, 3) @ affine[:, :3]
        return (target + velocity_error).reshape(pos0.shape).float() + 0 * self.zero


@pytest.mark.parametrize("family", ["transformer", "transformer-aug", "transformer-aug-notrans"])
def test_augmentation_moves_targets_with_inputs(dataset, monkeypatch, family):
    oracles = []

    def build(plan):
        oracles.append(_EquivariantOracle(dataset))
        return oracles[-1]

    monkeypatch.setattr(study.training, "build", build)
    result = train(plan(family, steps=6, batch_size=32), dataset)
    assert result.train_loss < 1e-10                      # g·posT is exactly what the loop asks for
    R, t = (torch.cat(parts) for parts in zip(*oracles[0].elements[:6]))   # the six training batches
    det = torch.linalg.det(R)
    eye = torch.eye(3, dtype=R.dtype).expand_as(R)
    assert torch.allclose(R @ R.transpose(1, 2), eye, atol=1e-4)  # the fit recovered orthogonal elements
    if family == "transformer-aug":
        assert (det < 0).any() and (det > 0).any()        # rotations and reflections
        assert (R - eye).abs().amax(dim=(1, 2)).min() > 1e-2 and t.norm(dim=1).min() > 1e-3
    elif family == "transformer-aug-notrans":             # rotations and reflections, no translation
        assert (det < 0).any() and (det > 0).any()
        assert (R - eye).abs().amax(dim=(1, 2)).min() > 1e-2 and t.abs().max() < 1e-4
    else:
        assert torch.allclose(R, eye, atol=1e-5) and t.abs().max() < 1e-5


def test_run_learns_reports_its_curve_and_returns_a_typed_result(dataset):
    shape = {"width": 16, "depth": 1}
    curve = []
    result = train(plan(shape=shape, lr=3e-3, steps=120, batch_size=16, seed=3, evals=4), dataset,
                   report=lambda step, loss: curve.append((step, loss)))
    assert isinstance(result, TrainResult)
    assert [s for s, _ in curve] == eval_steps(120, 4) and list(result.curve) == curve
    assert result.val_loss == curve[-1][1]                # val_samples=0: the probe is the whole val split
    torch.manual_seed(3)
    untrained = _mse_by_hand(build_model("transformer", **shape), dataset.val)  # the same initialisation
    assert result.val_loss < 0.5 * untrained
    assert result.samples == 120 * 16 and result.steps == 120
    assert result.epochs == pytest.approx(120 * 16 / len(dataset.train))
    assert result.params == param_count("transformer", **shape)
    assert math.isfinite(result.test_loss) and math.isfinite(result.train_loss)
    assert result.wall_seconds >= result.train_seconds > 0
    assert result.equivariance_error > 1e-3  # a plain transformer is not equivariant


def test_same_seed_same_run_other_seed_other_run(dataset):
    a, b, c = (train(plan(seed=seed, steps=30), dataset) for seed in (1, 1, 2))
    assert a.val_loss == b.val_loss and a.val_loss != c.val_loss


def test_gatr_run_stays_equivariant_and_augmented_transformer_runs(dataset):
    gatr = train(plan("gatr", {"mv_channels": 2, "s_channels": 4, "depth": 1}, steps=10), dataset)
    assert gatr.equivariance_error < 1e-4
    aug = train(plan("transformer-aug", steps=10), dataset)
    plain = train(plan("transformer", steps=10), dataset)
    assert aug.val_loss != plain.val_loss  # same seed and batches: only the augmentation differs


@pytest.mark.parametrize("steps", [20, 250])
def test_non_finite_loss_raises_divergence_error_at_the_first_bad_step(dataset, steps):
    broken = dataclasses.replace(dataset, train=dataclasses.replace(
        dataset.train, posT=torch.full_like(dataset.train.posT, float("nan"))))
    with pytest.raises(DivergenceError, match="step 1:") as info:
        train(plan(steps=steps), broken)
    assert info.value.step == 1 and math.isnan(info.value.loss)


class _Interrupted(Exception):
    """Raised from the checkpoint callback: the worker 'dies' right after saving."""


def _serialised(state: dict) -> dict:
    """A state as a retried worker gets it back: through torch.save and a weights-only load."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=True)


def _run_until(p: TrialPlan, dataset, stop_at: int) -> tuple[dict, list]:
    """Train `p` (checkpoints due after every step); the run dies right after saving at `stop_at`."""
    saved, reported = {}, []

    def checkpoint(state):
        if state["step"] == stop_at:
            saved["state"] = _serialised(state)
            raise _Interrupted

    with pytest.raises(_Interrupted):
        train(p, dataset, checkpoint=checkpoint, report=lambda s, v: reported.append(s))
    return saved["state"], reported


# transformer-aug: 300 steps cross a block of DRAW_AHEAD=256 drawn minibatches (resume inside it and at its end;
# augmentation draws from the same generator); gatr: another model and optimiser state, before the last eval
@pytest.mark.parametrize("family, steps, stops", [("transformer-aug", 300, (100, 256)), ("gatr", 60, (41,))])
def test_a_run_resumed_from_a_checkpoint_ends_exactly_like_the_uninterrupted_run(dataset, family, steps, stops):
    shape = {"mv_channels": 2, "s_channels": 4, "depth": 1} if family == "gatr" else {"width": 8, "depth": 1}
    p = plan(family, shape, steps=steps, lr=3e-3, seed=5, evals=3, checkpoint_seconds=0.0)
    whole_curve = []
    whole = train(p, dataset, report=lambda s, v: whole_curve.append((s, v)))
    assert whole.resumed_from == 0
    for stop_at in stops:
        state, reported_before = _run_until(p, dataset, stop_at)
        assert state["step"] == stop_at and reported_before == [s for s, _ in whole_curve if s <= stop_at]
        reported_after = []
        resumed = train(p, dataset, resume=state, report=lambda s, v: reported_after.append((s, v)))
        assert reported_after == [(s, v) for s, v in whole_curve if s > stop_at]   # no step reported twice
        assert resumed.resumed_from == stop_at
        assert (resumed.steps, resumed.samples, resumed.epochs) == (whole.steps, whole.samples, whole.epochs) == (
            steps, steps * 8, steps * 8 / len(dataset.train))
        assert resumed.curve == whole.curve and [s for s, _ in resumed.curve] == eval_steps(steps, 3)
        for name in ("val_loss", "test_loss", "train_loss", "equivariance_error"):
            assert getattr(resumed, name) == pytest.approx(getattr(whole, name), rel=1e-12, abs=0), name
        assert resumed.train_seconds > state["seconds"] > 0   # the time before the checkpoint is counted


def test_checkpoints_come_after_the_interval_never_at_the_last_step(dataset):
    seen = []
    train(plan(steps=12, checkpoint_seconds=0.0), dataset, checkpoint=lambda state: seen.append(state["step"]))
    assert seen == list(range(1, 12))
    for seconds in (math.inf, 3600.0):
        train(plan(steps=12, checkpoint_seconds=seconds), dataset, checkpoint=lambda state: seen.append(0))
    assert seen == list(range(1, 12))


def test_a_checkpoint_of_another_plan_is_refused(dataset):
    p = plan(steps=12, checkpoint_seconds=0.0)
    state, _ = _run_until(p, dataset, 5)
    with pytest.raises(ValueError, match="another plan"):
        train(dataclasses.replace(p, lr=2e-3), dataset, resume=state)
    train(dataclasses.replace(p, threads=2, checkpoint_seconds=math.inf), dataset, resume=state)  # not part of it


def test_a_run_past_its_time_cap_stops_with_the_reason_and_an_uncapped_run_trains_every_step(dataset):
    reported = []
    with pytest.raises(TimeCapError, match=r"^time cap of 0 s passed after step 1 of 20") as info:
        train(plan(steps=20, evals=20, time_cap_seconds=0.0), dataset, report=lambda s, v: reported.append(s))
    assert info.value.step == 1 and reported == []        # stopped after the first step, before its validation
    assert isinstance(info.value, study.training.RunEnded)   # the trainable reports it (FAIL), never retries it
    assert train(plan(steps=20, time_cap_seconds=math.inf), dataset).steps == 20


def test_the_time_cap_counts_the_seconds_of_earlier_attempts(dataset):
    """A run resumed from a checkpoint taken after 100 s of training, under a 50 s cap, stops at its next step."""
    p = plan(steps=12, checkpoint_seconds=0.0)
    state, _ = _run_until(p, dataset, 5)
    state["seconds"] = 100.0
    with pytest.raises(TimeCapError) as info:
        train(dataclasses.replace(p, time_cap_seconds=50.0), dataset, resume=state)
    assert info.value.step == 6 and info.value.seconds > 100.0
    assert train(dataclasses.replace(p, time_cap_seconds=1e6), dataset, resume=state).steps == 12


def test_a_compiled_run_trains_the_same_function_as_the_eager_run(dataset, monkeypatch):
    """`plan.compile`: the training forward goes through torch.compile (here its aot_eager backend: dynamo and AOT
    autograd without code generation, seconds instead of minutes) and the run ends where the eager run ends."""
    compiled = []
    real = torch.compile

    def aot_eager(model, **kwargs):
        compiled.append(model)
        return real(model, backend="aot_eager")

    monkeypatch.setattr(torch, "compile", aot_eager)
    for family, shape in (("transformer", None), ("gatr", {"mv_channels": 2, "s_channels": 4, "depth": 1})):
        eager = train(plan(family, shape, steps=12, seed=4, evals=3), dataset)
        assert not compiled
        fast = train(plan(family, shape, steps=12, seed=4, evals=3, compile=True), dataset)
        assert len(compiled) == 1 and isinstance(compiled.pop(), nn.Module)
        assert [s for s, _ in fast.curve] == [s for s, _ in eager.curve]
        for (_, a), (_, b) in zip(fast.curve, eager.curve):
            assert a == pytest.approx(b, rel=1e-4)
        assert fast.val_loss == pytest.approx(eager.val_loss, rel=1e-4)
        assert fast.train_loss == pytest.approx(eager.train_loss, rel=1e-4)
