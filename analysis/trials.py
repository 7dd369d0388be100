"""Runs to fit: COMPLETE full-budget trials from an Optuna storage, or a user's CSV table.

Both give a `Runs`: a frame with one row per run (family, budget, params, samples, flops, loss, …)
plus what was left out and why, so that nothing is fitted or dropped silently.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import optuna
import pandas as pd

from analysis import axes as X
from analysis.allocation import FlopsModel
from study import schema
from study.errors import ConfigError, EquiscaleError
from study.storage import check_storage, open_storage

BUDGET_TOLERANCE = 0.01  # a run counts when |flops_used / C − 1| ≤ 1%
COLUMNS = ["family", "budget", "params", "samples", "steps", "flops", "loss", schema.VAL_LOSS, schema.TEST_LOSS,
           "shape", "lr", "trial", "equivariance_error", "epochs", "batch", "bodies",
           "executed", "nominal", "idealised", "seconds", "compute", "seed", "rule_lr", "phase"]
# budget: the stored budget (a run's group); flops: its compute on the chosen axis (what the FLOP model fits);
# compute: its x on that axis (the budget itself under `executed`); executed … seconds: every axis (NaN: not
# stored, or idealised not yet counted: `Runs.on_axis`). seed, rule_lr, phase: stored by replicated/adaptive studies
# (NaN/None before them); trials sharing (family, budget, shape, lr) with a stored seed are one point
# (`analysis.points`), a trial without one is its own point.


class OnlyDataStudies(EquiscaleError):
    """The storage holds data studies (`data/<family>/<size>`) and no compute study to fit."""


@dataclass
class Runs:
    """The runs to fit and the reasons rows were left out (reason -> count)."""

    frame: pd.DataFrame
    excluded: dict[str, int] = field(default_factory=dict)
    batch_sizes: dict[tuple[str, float], int] = field(default_factory=dict)  # (family, budget) -> that study's batch
    source: str = ""
    flops_model: FlopsModel | None = None  # fixed FLOP model (CSV input: C = k·N·D); None: fitted per family
    axis: str = X.EXECUTED
    axis_notes: dict[str, str] = field(default_factory=dict)  # family -> how its compute on `axis` was counted
    source_kind: str = "storage"  # "storage" or "csv"
    stored_claims: list = field(default_factory=list)  # the distinct `schema.ClaimFamilies` the studies store
    loss_name: str = schema.VAL_LOSS  # which stored loss `loss` holds ("loss" for a CSV table)

    def claims(self) -> schema.ClaimFamilies:
        """Which families the claims compare: as the studies store it (`schema.CLAIMS`), else the defaults."""
        return claims_of(self.stored_claims, self.source)

    def families(self) -> list[str]:
        return sorted(self.frame["family"].unique())

    def batch_sizes_of(self, family: str) -> dict[float, int]:
        """Stored budget -> batch size of each of the family's studies (steps = D / batch at that budget)."""
        return {budget: batch for (f, budget), batch in self.batch_sizes.items() if f == family}

    def on_axis(self, axis: str) -> "Runs":
        """These runs with compute counted on `axis` (`analysis.axes`): `flops` and `compute` hold each run's
        compute on it; the budget (the group) stays the stored one. Runs without a value on the axis are left
        out, counted in `excluded`; a CSV table has only its own compute (the executed axis)."""
        X.check_axis(axis)
        if axis == self.axis:
            return self
        frame, notes = X.with_axis_columns(self.frame, (axis,)) if self.source_kind == "storage" else (self.frame, {})
        if axis != X.EXECUTED and self.source_kind != "storage":
            raise ConfigError(f"--compute {axis} needs runs from a storage (a CSV table has one compute column)")
        values = frame[X.COLUMN[axis]].to_numpy(float)
        ok = np.isfinite(values) & (values > 0)
        excluded = dict(self.excluded)
        if not ok.all():
            excluded[f"no {X.SHORT[axis]} stored (--compute {axis})"] = int((~ok).sum())
        frame = frame[ok].copy()
        if frame.empty:
            raise EquiscaleError(f"--compute {axis}: no run stores its {X.SHORT[axis]}")
        frame["flops"] = frame[X.COLUMN[axis]]
        frame["compute"] = frame["budget"] if axis == X.EXECUTED else frame[X.COLUMN[axis]]
        return Runs(frame, excluded, dict(self.batch_sizes), source=self.source, flops_model=self.flops_model,
                    axis=axis, axis_notes=notes, source_kind=self.source_kind,
                    stored_claims=list(self.stored_claims), loss_name=self.loss_name)


def claims_of(stored: list, source: str) -> schema.ClaimFamilies:
    """The one ClaimFamilies the studies store (the defaults when none stores any); an error when they differ.
    A storage that names no no-translation variant (e.g. compute studies, which do not train it) agrees with one
    that names it for the same families: the variant is kept."""
    distinct = list(dict.fromkeys(stored))
    variants = list(dict.fromkeys(c.no_translation for c in distinct if c.no_translation is not None))
    core = list(dict.fromkeys(dataclasses.replace(c, no_translation=None) for c in distinct))
    if len(core) > 1 or len(variants) > 1:
        raise EquiscaleError(f"the studies in {source} name different families for the claims "
                             f"({'; '.join(map(str, distinct))}): give `equiscale report --equivariant F --baselines "
                             f"F1,F2`")
    if not core:
        return schema.ClaimFamilies()
    return dataclasses.replace(core[0], no_translation=variants[0] if variants else None)


def read_claims(summary, source: str, stored: list) -> None:
    """Add the ClaimFamilies a study stores (if any) to `stored`; a malformed one is an error naming the study."""
    try:
        claims = schema.read_claims(summary.user_attrs)
    except ValueError as exc:
        raise EquiscaleError(f"study {summary.study_name!r} in {source}: {exc}") from None
    if claims is not None and claims not in stored:
        stored.append(claims)


def _count(excluded: dict, reason: str) -> None:
    excluded[reason] = excluded.get(reason, 0) + 1


def open_studies(url: str) -> tuple[object, list]:
    """(read-only storage, its study summaries): an error when the URL is bad or names no Optuna storage."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    check_storage(url, must_exist=True)
    storage = open_storage(url, read_only=True)
    return storage, optuna.get_all_study_summaries(storage, include_best_trial=False)


def load_storage(url: str, *, loss: str = schema.VAL_LOSS, tolerance: float = BUDGET_TOLERANCE, opened=None) -> Runs:
    """Every COMPLETE trial that used its full budget, from every `<family>/<budget>` study in `url`.

    Data studies (`data/<family>/<size>`, see `analysis.data_efficiency`) are not budget runs and are
    skipped; a storage holding only those raises `OnlyDataStudies`. opened: `open_studies(url)` already done.
    """
    storage, summaries = opened or open_studies(url)
    if not summaries:
        raise EquiscaleError(f"storage {url!r} holds no studies (run `equiscale run` first)")
    rows, excluded, batch, data_studies, compute_studies, claims = [], {}, {}, 0, 0, []
    for summary in summaries:
        attrs = schema.read_study_attrs(summary.user_attrs)
        if attrs is None:
            _count(excluded, f"study {summary.study_name!r} lacks family/budget attributes")
            continue
        if attrs.kind == schema.DATA:
            data_studies += 1
            continue
        compute_studies += 1
        read_claims(summary, url, claims)
        if attrs.batch_size:
            batch[(attrs.family, attrs.budget)] = attrs.batch_size
        study = optuna.load_study(study_name=summary.study_name, storage=storage)
        for trial in study.get_trials(deepcopy=False):
            if trial.state != optuna.trial.TrialState.COMPLETE:
                _count(excluded, f"trial state {trial.state.name}")
                continue
            row = _trial_row(schema.read_trial(trial), attrs, loss, tolerance, excluded,
                             schema.read_proposal(trial.user_attrs))
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
    return Runs(frame, excluded, batch, source=url, stored_claims=claims, loss_name=loss)


def _trial_row(record: schema.TrialRecord, attrs: schema.StudyAttrs, loss, tolerance, excluded, proposal=(None, None)):
    family, budget = attrs.family, attrs.budget
    missing = [k for k in (schema.PARAMS, schema.SAMPLES, schema.FLOPS_USED) if getattr(record, k) is None]
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
    return [family, budget, n, d, record.steps, flops, float(value), _or_nan(record.loss(schema.VAL_LOSS)),
            _or_nan(record.test_loss), record.shape, record.lr, record.number, _or_nan(record.equivariance_error),
            _or_nan(record.epochs), attrs.batch_size or np.nan, schema.read_bodies(attrs), flops,
            _or_nan(record.nominal_flops), np.nan, _or_nan(_seconds(record)), budget, _or_nan(record.seed),
            _or_nan(proposal[1]), proposal[0]]


def _seconds(record) -> float | None:
    """A trial's training seconds: `train_seconds` where stored, else `wall_seconds` (trials before 0.3, whose
    seconds include the final evaluation)."""
    return record.train_seconds if record.train_seconds is not None else record.wall_seconds


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
        schema.VAL_LOSS: table[loss_column].to_numpy(float), schema.TEST_LOSS: np.nan, "shape": None, "lr": np.nan,
        "trial": np.arange(len(table)), "equivariance_error": np.nan, "epochs": np.nan, "batch": np.nan,
        "bodies": np.nan, "executed": flops, "nominal": np.nan, "idealised": np.nan, "seconds": np.nan,
        "seed": np.nan, "rule_lr": np.nan, "phase": None,
    }, columns=COLUMNS)
    frame["compute"] = frame["budget"]
    if frame.empty:
        raise EquiscaleError(f"{path.name} has no rows")
    return Runs(frame, {}, {}, source=str(path), source_kind="csv", loss_name="loss")
