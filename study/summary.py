"""What a storage holds, study by study: the rows `equiscale status` prints and `run_study` returns."""

from __future__ import annotations

import math
from dataclasses import dataclass

import optuna
from optuna.trial import TrialState

from study import schema


@dataclass(frozen=True)
class StudyRow:
    """One study: COMPLETE trials against the target, failures, the best validation loss and its trial."""

    study: str
    family: str | None
    budget: float | None
    complete: int
    target: int | None
    failed: int
    running: int
    best: float                        # nan when no trial is COMPLETE
    best_trial: schema.TrialRecord | None
    train_size: int = 0                # data studies: training scenes (0: a compute study)
    kind: str = schema.COMPUTE         # the study kind's name, as stored

    @property
    def remaining(self) -> int:
        return 0 if self.target is None else max(0, self.target - self.complete)


@dataclass(frozen=True)
class StudySummary:
    """The result of `run_study`: every study of the storage, and those of this run still short of target."""

    storage: str
    rows: tuple[StudyRow, ...]
    short: tuple[str, ...] = ()

    def table(self) -> str:
        return format_table(self.rows)


def study_rows(storage) -> list[StudyRow]:
    """Per study of `storage` (an Optuna storage object): compute studies by family then budget, then data studies
    by family then training-set size."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    rows = []
    for summary in optuna.get_all_study_summaries(storage, include_best_trial=False):
        attrs = schema.read_study_attrs(summary.user_attrs)
        trials = optuna.load_study(study_name=summary.study_name, storage=storage).get_trials(deepcopy=False)
        complete = [t for t in trials if t.state == TrialState.COMPLETE]
        best = min(complete, key=lambda t: t.value, default=None)
        rows.append(StudyRow(
            study=summary.study_name,
            family=attrs.family if attrs else None,
            budget=attrs.budget if attrs else None,
            complete=len(complete),
            target=attrs.target_trials if attrs and attrs.target_trials else None,
            failed=sum(t.state == TrialState.FAIL for t in trials),
            running=sum(t.state == TrialState.RUNNING for t in trials),
            best=best.value if best else math.nan,
            best_trial=schema.read_trial(best) if best else None,
            train_size=attrs.train_size if attrs else 0, kind=attrs.kind if attrs else schema.COMPUTE,
        ))
    # compute studies first, then the other kinds'; each by family, then budget or training-set size
    return sorted(rows, key=lambda r: (r.kind != schema.COMPUTE, r.kind, r.family or r.study, r.budget or 0.0,
                                       r.train_size))


def format_table(rows) -> str:
    """The rows as an aligned text table (best shape with N and the epochs it trained)."""
    if not rows:
        return "no studies in this storage"
    header = ("study", "trials", "failed", "running", "best val loss", "epochs", "best shape")
    lines = [header]
    for r in rows:
        best = r.best_trial
        shape = " ".join(f"{k}={v}" for k, v in ((best.shape if best else None) or {}).items())
        if best and best.params:
            shape += f" (N={int(best.params):,})"
        epochs = f"{best.epochs:.2g}" if best and best.epochs is not None else "-"
        target = "?" if r.target is None else str(r.target)
        value = "-" if math.isnan(r.best) else f"{r.best:.4g}"
        lines.append((r.study, f"{r.complete}/{target}", str(r.failed), str(r.running), value, epochs, shape or "-"))
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(line, widths)).rstrip() for line in lines)
