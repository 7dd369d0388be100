"""Synthetic runs from a known L(N, D) and Optuna storages holding them, for the analysis tests."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import optuna


@dataclass(frozen=True)
class Truth:
    E: float = 0.5
    A: float = 300.0
    B: float = 900.0
    alpha: float = 0.35
    beta: float = 0.40
    K: float = 6.0  # C = K · N^(1+kappa) · D
    kappa: float = 0.0

    def loss(self, n, d):
        return self.E + self.A / np.asarray(n, float) ** self.alpha + self.B / np.asarray(d, float) ** self.beta

    def n_opt(self, c):
        p = 1 + self.kappa
        return (self.alpha * self.A / (self.beta * p * self.B) * (c / self.K) ** self.beta) ** (
            1 / (self.alpha + self.beta * p))

    def samples(self, n, c):
        return c / (self.K * np.asarray(n, float) ** (1 + self.kappa))


def draw_runs(truth: Truth, budgets, per_budget: int, *, noise: float = 0.02, spread: float = 30.0, seed: int = 0):
    """IsoFLOP runs: per budget, N log-spaced over `spread`× around the optimum (jittered),
    D from the FLOP model, loss × exp(noise · N(0, 1)). Returns arrays (budget, N, D, loss)."""
    rng = np.random.default_rng(seed)
    rows = []
    for c in budgets:
        centre = np.log(truth.n_opt(c))
        x = centre + np.linspace(-0.5, 0.5, per_budget) * np.log(spread) + rng.normal(0, 0.05, per_budget)
        n = np.exp(x)
        d = truth.samples(n, c)
        loss = truth.loss(n, d) * np.exp(noise * rng.normal(size=per_budget))
        rows.append(np.stack([np.full(per_budget, c), n, d, loss], axis=1))
    out = np.concatenate(rows)
    return out[:, 0], out[:, 1], out[:, 2], out[:, 3]


def make_storage(url: str, families: dict[str, Truth], budgets, per_budget: int = 8, *, seed: int = 0,
                 batch_size: int | dict = 64, extras: bool = True, errors: dict[str, float] | None = None,
                 claims: dict | None = None, trial_attrs=None) -> None:
    """One study `<family>/<budget>` per (family, budget) with the contract's attributes. With `extras`,
    each study also gets a FAIL trial and a COMPLETE trial that stopped at half its budget. errors: the
    `equivariance_error` of each family's trials (default 0). batch_size: one for every study, or
    budget -> batch size. claims: stored under `schema.CLAIMS` on every study. trial_attrs(family, n, d,
    flops) -> extra/overriding trial attributes (e.g. wall_seconds, nominal_flops, shape)."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    dist = {"x": optuna.distributions.FloatDistribution(0, 1)}
    for i, (family, truth) in enumerate(families.items()):
        budget, n, d, loss = draw_runs(truth, budgets, per_budget, seed=seed + i)
        for c in budgets:
            batch = batch_size[c] if isinstance(batch_size, dict) else batch_size
            study = optuna.create_study(storage=url, study_name=f"{family}/{c:.0e}")
            for k, v in {"family": family, "budget": float(c), "batch_size": batch, "dataset_key": "test"}.items():
                study.set_user_attr(k, v)
            if claims is not None:
                study.set_user_attr("claims", claims)
            error = (errors or {}).get(family, 0.0)
            for k, (nn, dd, ll) in enumerate(zip(n[budget == c], d[budget == c], loss[budget == c])):
                extra = trial_attrs(family, nn, dd, c * (1 + 0.002)) if trial_attrs else {}
                study.add_trial(_trial(nn, dd, ll, c * (1 + 0.002), batch, dist, error * 1.5**k, extra))
            if extras:
                nn = truth.n_opt(c)
                half = truth.samples(nn, c) / 2
                study.add_trial(_trial(nn, half, truth.loss(nn, half), c / 2, batch, dist, error))
                study.add_trial(optuna.trial.create_trial(state=optuna.trial.TrialState.FAIL, params={"x": 0.5},
                                                          distributions=dist))


def _trial(n, d, loss, flops, batch, dist, error=0.0, extra=None):
    steps = int(round(d / batch))
    attrs = {"params": int(round(n)), "samples": int(round(d)), "steps": steps, "flops_used": float(flops),
             "val_loss": float(loss), "test_loss": float(loss) * 1.01, "wall_seconds": 1.0,
             "nominal_flops": float(flops) * 1.02,
             "equivariance_error": float(error), "node": "test", "shape": {"width": 64, "depth": 2}, "lr": 1e-3,
             **(extra or {})}
    if "test_loss_factor" in attrs:   # a test loss off the validation loss by this trial's own factor
        attrs["test_loss"] = float(loss) * attrs.pop("test_loss_factor")
    return optuna.trial.create_trial(value=float(loss), params={"x": 0.5}, distributions=dist, user_attrs=attrs)


@dataclass(frozen=True)
class Replicated:
    """How a replicated, adaptive-style (sampler "isoflop") study of one family looks: per budget `sizes` points
    log-spaced over `spread`× around the true optimum (shifted by `shift` decades), at the rule lr; `seeds`
    seeds at the best three points; an lr sweep at the best point of lr_opt(C)·`sweep` (lr_opt = lr0 ·
    (C / 1e12)^gamma), its best lr with `seeds` seeds. A seed multiplies the loss by exp(sigma · N(0, 1)); an lr
    off lr_opt by exp(lr_cost · ln(lr / lr_opt)²)."""

    sizes: int = 7
    spread: float = 30.0
    seeds: int = 3
    sigma: float = 0.01
    rule_lr: float = 1e-3
    lr0: float = 2e-3
    gamma: float = -0.25
    lr_cost: float = 0.05
    sweep: tuple = (0.5, 1.0, 2.0)


def replicated_trials(truth: Truth, budgets, rep: Replicated, *, seed: int = 0, shift: dict | None = None,
                      sweeps: dict | None = None):
    """Rows (budget, n, d, lr, seed, phase, loss) of one family; shift: budget -> decades the size grid is moved;
    sweeps: budget -> the lr factors of that budget's sweep (default rep.sweep)."""
    rng = np.random.default_rng(seed)
    rows, trial_seed = [], 1000 * seed
    for c in budgets:
        lr_opt = rep.lr0 * (c / 1e12) ** rep.gamma
        centre = np.log(truth.n_opt(c)) + (shift or {}).get(c, 0.0) * np.log(10)
        n = np.exp(centre + np.linspace(-0.5, 0.5, rep.sizes) * np.log(rep.spread))
        d = truth.samples(n, c)

        def loss_at(i, lr):
            return truth.loss(n[i], d[i]) * np.exp(rep.lr_cost * np.log(lr / lr_opt) ** 2)

        def add(i, lr, phase, k=1):
            nonlocal trial_seed
            for _ in range(k):
                trial_seed += 1
                rows.append((c, n[i], d[i], lr, trial_seed, phase,
                             float(loss_at(i, lr) * np.exp(rep.sigma * rng.normal()))))
        for i in range(rep.sizes):
            add(i, rep.rule_lr, "coarse")
        best = int(np.argmin([loss_at(i, rep.rule_lr) for i in range(rep.sizes)]))
        for i in (best - 1, best, best + 1):
            if 0 <= i < rep.sizes:
                add(i, rep.rule_lr, "replicate", rep.seeds - 1)
        factors = (sweeps or {}).get(c, rep.sweep)
        lrs = [lr_opt * f for f in factors if abs(lr_opt * f / rep.rule_lr - 1) > 1e-9]
        best_lr = min(lrs + [rep.rule_lr], key=lambda lr: loss_at(best, lr))
        for lr in lrs:
            add(best, lr, "lr", rep.seeds if lr == best_lr else 1)
    return rows


def make_replicated_storage(url: str, families: dict[str, Truth], budgets, rep: Replicated = Replicated(), *,
                            batch_size: int = 64, seed: int = 0, shift: dict | None = None,
                            sweeps: dict | None = None, claims: dict | None = None) -> dict:
    """One study `<family>/<budget>` per (family, budget) stored as an adaptive, replicated study stores it
    (each trial its seed, phase and the rule lr); shift/sweeps: family -> as `replicated_trials` takes them.
    Returns family -> the rows written."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    dist = {"x": optuna.distributions.FloatDistribution(0, 1)}
    written = {}
    for k, (family, truth) in enumerate(families.items()):
        rows = replicated_trials(truth, budgets, rep, seed=seed + k, shift=(shift or {}).get(family),
                                 sweeps=(sweeps or {}).get(family))
        written[family] = rows
        for c in budgets:
            study = optuna.create_study(storage=url, study_name=f"{family}/{c:.0e}")
            for key, v in {"family": family, "budget": float(c), "batch_size": batch_size, "dataset_key": "test"}.items():
                study.set_user_attr(key, v)
            if claims is not None:
                study.set_user_attr("claims", claims)
            for (b, n, d, lr, s, phase, loss) in rows:
                if b != c:
                    continue
                extra = {"lr": float(lr), "seed": int(s), "phase": phase, "rule_lr": rep.rule_lr,
                         "shape": {"width": int(round(n)), "depth": 2}, "train_seconds": 1.0}
                study.add_trial(_trial(n, d, loss, c * (1 + 0.002), batch_size, dist, 0.0, extra))
    return written
