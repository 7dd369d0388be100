"""Synthetic data studies (`data/<family>/<train_size>`) with known laws and learning curves, for the tests."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import optuna

from study import schema

STEPS, BATCH, FLOPS_PER_STEP = 4096, 32, 1e6


@dataclass(frozen=True)
class DataTruth:
    """Final loss L(n) = coef · n^(−alpha) at the best learning rate; the learning curve at epoch e is
    L(n) · (1 + slow / e^0.7): `slow` large = slow to learn per epoch."""

    coef: float
    alpha: float
    slow: float = 1.0
    equivariance_error: float = 0.1

    def final(self, n):
        return self.coef * np.asarray(n, float) ** (-self.alpha)

    def curve(self, n, epoch):
        return self.final(n) * (1 + self.slow / np.asarray(epoch, float) ** 0.7)


LRS = (1e-3, 2e-3, 4e-3)
LR_PENALTY = (1.10, 1.0, 1.05)  # the middle learning rate is best


def epochs_of(n: int) -> float:
    return STEPS * BATCH / n


def recorded_epochs(n: int, count: int = 12) -> list[int]:
    """Log-spaced whole epochs from 1 to the run's last (as a data study records its learning curve)."""
    return sorted({int(e) for e in np.geomspace(1, max(1.0, epochs_of(n)), count)})


def make_data_storage(url: str, families: dict[str, DataTruth], sizes, *, noise: float = 0.0, seed: int = 0,
                      lrs=LRS, penalties=LR_PENALTY, failed: bool = True) -> dict:
    """One data study per (family, size), a COMPLETE trial per learning rate (final loss × its penalty ×
    exp(noise·N(0, 1)); curve on the probe = the truth's curve × penalty) and, with `failed`, a FAIL
    trial per study. Returns {(family, size): [final losses of the trials]}."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    rng = np.random.default_rng(seed)
    dist = {"lr": optuna.distributions.FloatDistribution(1e-4, 1e-1, log=True)}
    stored = {}
    for family, truth in families.items():
        for n in sizes:
            study = optuna.create_study(storage=url, study_name=schema.data_study_name(family, n))
            schema.write_study_attrs(study, schema.StudyAttrs(
                family=family, budget=STEPS * FLOPS_PER_STEP, batch_size=BATCH, dataset_key="synthetic",
                target_trials=len(lrs), settings={"kind": schema.DATA}, kind=schema.DATA, train_size=int(n)))
            losses = []
            for lr, penalty in zip(lrs, penalties):
                loss = float(truth.final(n) * penalty * np.exp(noise * rng.normal()))
                curve = {e: float(truth.curve(n, e) * penalty) for e in recorded_epochs(n)}
                attrs = {schema.PARAMS: 5000, schema.SAMPLES: STEPS * BATCH, schema.STEPS: STEPS,
                         schema.FLOPS_USED: STEPS * FLOPS_PER_STEP, schema.VAL_LOSS: loss,
                         schema.TEST_LOSS: loss * 1.01, schema.TRAIN_LOSS: loss * 0.5,
                         schema.EPOCHS: epochs_of(n), schema.EQUIVARIANCE_ERROR: truth.equivariance_error,
                         schema.LR: lr, schema.SHAPE: {"depth": 2}, schema.TRAIN_SIZE: int(n)}
                study.add_trial(optuna.trial.create_trial(value=loss, params={"lr": lr}, distributions=dist,
                                                          user_attrs=attrs, intermediate_values=curve))
                losses.append(loss)
            if failed:
                study.add_trial(optuna.trial.create_trial(state=optuna.trial.TrialState.FAIL, params={"lr": 1e-3},
                                                          distributions=dist))
            stored[(family, int(n))] = losses
    return stored


# --- data study v2: several training lengths per size, a log lr grid, seeds at the best lr ------------------

@dataclass(frozen=True)
class LengthTruth:
    """Best-lr loss at n scenes after `steps` steps: coef · n^(−alpha) · (1 + gap · (steps / 1000)^(−decay))."""

    coef: float
    alpha: float
    gap: float = 0.0
    decay: float = 0.5

    def loss(self, n, steps):
        return self.coef * np.asarray(n, float) ** (-self.alpha) * (1 + self.gap * (np.asarray(steps, float) / 1000)
                                                                    ** (-self.decay))


GRID = (5e-4, 1e-3, 2e-3, 4e-3, 8e-3)
GRID_PENALTY = (1.30, 1.10, 1.0, 1.08, 1.25)   # the middle lr of the grid is best


def make_length_storage(url: str, families: dict[str, LengthTruth], lengths: dict[int, tuple[int, ...]], *,
                        noise: float = 0.02, seeds: int = 2, seed: int = 0, lrs=GRID, penalties=GRID_PENALTY,
                        claims: schema.ClaimFamilies | None = None, sizes_of: dict[str, tuple[int, ...]] | None = None
                        ) -> dict:
    """One study `data/<family>/<size>/<steps>` per (family, size, length) in `lengths` (size -> its lengths; a
    family in `sizes_of` only at those sizes): a COMPLETE trial per lr of the grid (loss = truth × penalty ×
    exp(noise·N(0, 1)); test = val × 1.01) and `seeds` seeds at the best lr (the lowest penalty). Returns
    {(family, size, steps, lr): [val losses over seeds]}."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    rng = np.random.default_rng(seed)
    dist = {"lr": optuna.distributions.FloatDistribution(1e-5, 1.0, log=True)}
    best = int(np.argmin(penalties))
    stored = {}
    for family, truth in families.items():
        for n, steps_list in lengths.items():
            if sizes_of and family in sizes_of and n not in sizes_of[family]:
                continue
            for steps in steps_list:
                study = optuna.create_study(storage=url, study_name=schema.data_study_name(family, n, steps))
                schema.write_study_attrs(study, schema.StudyAttrs(
                    family=family, budget=steps * FLOPS_PER_STEP, batch_size=BATCH, dataset_key="synthetic",
                    target_trials=len(lrs) + seeds - 1, settings={"kind": schema.DATA}, kind=schema.DATA,
                    train_size=int(n), claims=(claims or schema.ClaimFamilies()).as_attr()))
                for k, (lr, penalty) in enumerate(zip(lrs, penalties)):
                    for s in range(seeds if k == best else 1):
                        loss = float(truth.loss(n, steps) * penalty * np.exp(noise * rng.normal()))
                        epochs = steps * BATCH / n
                        curve = {e: float(loss * (1 + 1 / e ** 0.7)) for e in recorded_epochs(n, 6)
                                 if e <= max(1.0, epochs)}
                        attrs = {schema.PARAMS: 5000, schema.SAMPLES: steps * BATCH, schema.STEPS: int(steps),
                                 schema.FLOPS_USED: steps * FLOPS_PER_STEP, schema.VAL_LOSS: loss,
                                 schema.TEST_LOSS: loss * 1.01, schema.TRAIN_LOSS: loss * 0.5, schema.EPOCHS: epochs,
                                 schema.EQUIVARIANCE_ERROR: 0.1, schema.LR: lr, schema.SHAPE: {"depth": 2},
                                 schema.TRAIN_SIZE: int(n), schema.SEED: s}
                        study.add_trial(optuna.trial.create_trial(value=loss, params={"lr": lr}, distributions=dist,
                                                                  user_attrs=attrs, intermediate_values=curve))
                        stored.setdefault((family, int(n), int(steps), lr), []).append(loss)
    return stored
