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
