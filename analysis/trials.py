"""Runs to fit: COMPLETE full-budget trials from an Optuna storage, or a user's CSV table.

Both give a `Runs`: a frame with one row per run (family, budget, params, samples, flops, loss, …)
plus what was left out and why, so that nothing is fitted or dropped silently.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import optuna
import pandas as pd

from analysis.allocation import FlopsModel
from study import schema
from study.errors import ConfigError, EquiscaleError
from study.storage import check_storage, open_storage

BUDGET_TOLERANCE = 0.01  # a run counts when |flops_used / C − 1| ≤ 1%
COLUMNS = ["family", "budget", "params", "samples", "steps", "flops", "loss", "val_loss", "test_loss",
           "shape", "lr", "trial", "equivariance_error", "epochs"]


class OnlyDataStudies(EquiscaleError):
    """The storage holds data studies (`data/<family>/<size>`) and no compute study to fit."""


@dataclass
class Runs:
    """The runs to fit and the reasons rows were left out (reason -> count)."""

    frame: pd.DataFrame
    excluded: dict[str, int] = field(default_factory=dict)
    batch_sizes: dict[str, int] = field(default_factory=dict)  # family -> batch size (steps = D / batch)
    source: str = ""
    flops_model: FlopsModel | None = None  # fixed FLOP model (CSV input: C = k·N·D); None: fitted per family

    def families(self) -> list[str]:
        return sorted(self.frame["family"].unique())


def _count(excluded: dict, reason: str) -> None:
    excluded[reason] = excluded.get(reason, 0) + 1


def open_studies(url: str) -> tuple[object, list]:
    """(read-only storage, its study summaries): an error when the URL is bad or names no Optuna storage."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    check_storage(url, must_exist=True)
    storage = open_storage(url, read_only=True)
    return storage, optuna.get_all_study_summaries(storage, include_best_trial=False)


def load_storage(url: str, *, loss: str = "val_loss", tolerance: float = BUDGET_TOLERANCE, opened=None) -> Runs:
    """Every COMPLETE trial that used its full budget, from every `<family>/<budget>` study in `url`.

    Data studies (`data/<family>/<size>`, see `analysis.data_efficiency`) are not budget runs and are
    skipped; a storage holding only those raises `OnlyDataStudies`. opened: `open_studies(url)` already done.
    """
    storage, summaries = opened or open_studies(url)
    if not summaries:
        raise EquiscaleError(f"storage {url!r} holds no studies (run `equiscale run` first)")
    rows, excluded, batch, data_studies, compute_studies = [], {}, {}, 0, 0
    for summary in summaries:
        attrs = schema.read_study_attrs(summary.user_attrs)
        if attrs is None:
            _count(excluded, f"study {summary.study_name!r} lacks family/budget attributes")
            continue
        if attrs.kind == schema.DATA:
            data_studies += 1
            continue
        compute_studies += 1
        if attrs.batch_size:
            batch[attrs.family] = attrs.batch_size
        study = optuna.load_study(study_name=summary.study_name, storage=storage)
        for trial in study.get_trials(deepcopy=False):
            if trial.state != optuna.trial.TrialState.COMPLETE:
                _count(excluded, f"trial state {trial.state.name}")
                continue
            row = _trial_row(schema.read_trial(trial), attrs.family, attrs.budget, loss, tolerance, excluded)
            if row is not None:
                rows.append(row)
    if data_studies and not compute_studies:
        raise OnlyDataStudies(
            f"storage {url!r} holds only data studies ({data_studies} `data/<family>/<size>` studies) and no "
            f"compute study: `equiscale fit`, `export` and `plot` fit compute studies; for data studies use "
            f"`equiscale report --storage {url}`")
    frame = pd.DataFrame(rows, columns=COLUMNS)
    if frame.empty:
        raise EquiscaleError(f"no COMPLETE full-budget trials in {url}" + _why(excluded))
    return Runs(frame, excluded, batch, source=url)


def _trial_row(record: schema.TrialRecord, family, budget, loss, tolerance, excluded):
    missing = [k for k in ("params", "samples", "flops_used") if getattr(record, k) is None]
    if missing:
        _count(excluded, f"trial lacks {', '.join(missing)}")
        return None
    value = record.loss(loss)
    n, d, flops = record.params, record.samples, record.flops_used
    if not abs(flops / budget - 1.0) <= tolerance:
        _count(excluded, "did not use its full budget (|flops_used/C − 1| > 1%)")
        return None
    if value is None or not np.isfinite(value) or value <= 0:
        _count(excluded, f"non-finite or non-positive {loss}")
        return None
    if not (n > 0 and d > 0):
        _count(excluded, "non-positive params or samples")
        return None
    return [family, budget, n, d, record.steps, flops, float(value), record.loss("val_loss"),
            record.test_loss, record.shape, record.lr, record.number, _or_nan(record.equivariance_error),
            _or_nan(record.epochs)]


def _or_nan(value) -> float:
    return float("nan") if value is None else float(value)


def _why(excluded: dict) -> str:
    return "" if not excluded else " (left out: " + "; ".join(f"{k}: {v}" for k, v in excluded.items()) + ")"


def group_budgets(c, *, tolerance: float = BUDGET_TOLERANCE) -> np.ndarray:
    """Budgets that differ by at most `tolerance` (relative, between neighbours) share their median."""
    c = np.asarray(c, float)
    order = np.argsort(c)
    sorted_c = c[order]
    breaks = np.concatenate([[0], np.cumsum(sorted_c[1:] / sorted_c[:-1] - 1 > tolerance)])
    out = np.empty_like(c)
    for g in np.unique(breaks):
        out[order[breaks == g]] = np.median(sorted_c[breaks == g])
    return out


def load_csv(path: str | Path, *, n_column: str, loss_column: str, d_column: str | None = None,
             c_column: str | None = None, family_column: str | None = None,
             flops_per_param_sample: float = 6.0, tolerance: float = BUDGET_TOLERANCE) -> Runs:
    """A user's table of runs: N, loss and either D or training compute C (then D = C / (k·N)).

    C = k·N·D with k = `flops_per_param_sample` (6 by default) fills in the missing one of C and D;
    budgets within `tolerance` of each other are grouped (for IsoFLOP and L(C)). Any row with a
    missing, non-finite or non-positive value is an error naming the row: nothing is dropped silently.
    """
    path = Path(path)
    if (d_column is None) == (c_column is None):
        raise ConfigError("give exactly one of --d-column (samples D) and --c-column (training compute C)")
    if not flops_per_param_sample > 0:
        raise ConfigError(f"--flops-per-param-sample must be positive, got {flops_per_param_sample}")
    if not path.is_file():
        raise EquiscaleError(f"no such CSV file: {path}")
    try:
        table = pd.read_csv(path)
    except Exception as exc:
        raise EquiscaleError(f"cannot read {path} as CSV: {exc}") from None
    if table.empty:
        raise EquiscaleError(f"{path.name} has no rows (only a header)" if len(table.columns) else f"{path.name} is empty")
    wanted = {"--n-column": n_column, "--loss-column": loss_column, "--d-column": d_column,
              "--c-column": c_column, "--family-column": family_column}
    for option, col in wanted.items():
        if col is not None and col not in table.columns:
            raise EquiscaleError(f"{path.name}: no column {col!r} (given by {option}); columns are {list(table.columns)}")
    numeric = [c for c in (n_column, loss_column, d_column, c_column) if c is not None]
    for col in numeric:
        values = pd.to_numeric(table[col], errors="coerce").to_numpy(float)
        bad = np.flatnonzero(~np.isfinite(values) | (values <= 0))
        if bad.size:
            raise EquiscaleError(f"{path.name}: column {col!r} must be positive and finite; row {bad[0] + 2} "
                                 f"(line in file) is {table[col].iloc[bad[0]]!r} ({bad.size} bad rows)")
        table[col] = values
    n = table[n_column].to_numpy(float)
    if c_column is not None:
        flops = table[c_column].to_numpy(float)
        d = flops / (flops_per_param_sample * n)
    else:
        d = table[d_column].to_numpy(float)
        flops = flops_per_param_sample * n * d
    family = table[family_column].astype(str) if family_column else pd.Series([path.stem] * len(table))
    frame = pd.DataFrame({
        "family": family.to_numpy(), "budget": group_budgets(flops, tolerance=tolerance), "params": n,
        "samples": d, "steps": np.nan, "flops": flops, "loss": table[loss_column].to_numpy(float),
        "val_loss": table[loss_column].to_numpy(float), "test_loss": np.nan, "shape": None, "lr": np.nan,
        "trial": np.arange(len(table)), "equivariance_error": np.nan, "epochs": np.nan,
    }, columns=COLUMNS)
    if frame.empty:
        raise EquiscaleError(f"{path.name} has no rows")
    return Runs(frame, {}, {}, source=str(path))
