"""The analysis as one library call: load runs (a study storage or a CSV table) and fit every family.

    from analysis.api import load_runs, fit_study
    runs = load_runs("sqlite:///equiscale.db")
    result = fit_study(runs, n_boot=200)
    result.laws[family].estimates["parametric"]["a"]       # Estimate(value, low, high, problem)

`equiscale fit`, `export` and `plot` are thin wrappers around these (study/commands/).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from analysis import axes as X
from analysis import parametric as P
from analysis.allocation import FlopsModel
from analysis.isoflop import DEFAULT_WINDOW
from analysis.laws import APPROACHES, FamilyLaws, fit_family
from analysis.trials import BUDGET_TOLERANCE, Runs, load_csv, load_storage
from study import schema
from study.storage import DEFAULT_STORAGE
from study.errors import ConfigError, EquiscaleError


@dataclass
class StudyFit:
    """Every family's laws, the runs they were fitted to, and each reason runs were left out."""

    runs: Runs
    laws: dict[str, FamilyLaws]
    excluded: dict[str, int] = field(default_factory=dict)  # reason -> count (storage filters + drops)
    flops_model: FlopsModel | None = None  # fixed model (CSV input); None: fitted per family

    def points_frame(self):
        """Every family's points (one row per point: the mean over its seeds, `analysis.points`); the runs'
        frame when a family has no points (laws built elsewhere)."""
        import pandas as pd

        parts = [self.laws[f].points.frame for f in self.laws if self.laws[f].points is not None]
        return pd.concat(parts, ignore_index=True) if parts and len(parts) == len(self.laws) else self.runs.frame

    def exclusion_lines(self) -> list[str]:
        """One line per reason runs were left out, so that nothing is dropped silently."""
        return [f"left out {count} run(s): {reason}" for reason, count in self.excluded.items()]


def load_runs(storage: str | None = None, *, loss: str = schema.VAL_LOSS, csv: str | None = None,
              n_column: str | None = None, loss_column: str | None = None, d_column: str | None = None,
              c_column: str | None = None, family_column: str | None = None,
              flops_per_param_sample: float = 6.0, budget_tolerance: float = BUDGET_TOLERANCE) -> Runs:
    """Runs from a study storage (default `study.config.DEFAULT_STORAGE`) or, with `csv`, a table of
    runs (then C = k·N·D with k = flops_per_param_sample fixes the FLOP model: `Runs.flops_model`)."""
    csv_only = {"n_column": n_column, "loss_column": loss_column, "d_column": d_column, "c_column": c_column,
                "family_column": family_column}
    if csv is None:
        given = [k for k, v in csv_only.items() if v]
        if given:
            raise ConfigError(f"--{given[0].replace('_', '-')} needs --from-csv")
        return load_storage(storage or DEFAULT_STORAGE, loss=loss)
    if storage:
        raise ConfigError("give either --storage or --from-csv, not both")
    for opt in ("n_column", "loss_column"):
        if not csv_only[opt]:
            raise ConfigError(f"--from-csv needs --{opt.replace('_', '-')}")
    runs = load_csv(csv, n_column=n_column, loss_column=loss_column, d_column=d_column, c_column=c_column,
                    family_column=family_column, flops_per_param_sample=flops_per_param_sample,
                    tolerance=budget_tolerance)
    runs.flops_model = FlopsModel(K=flops_per_param_sample, kappa=0.0)
    return runs


def _check(n_boot, level, refine, drop_highest_loss, window, robust=None) -> None:
    if n_boot < 0:
        raise ConfigError(f"--bootstrap must be ≥ 0, got {n_boot}")
    if not 0 < level < 1:
        raise ConfigError(f"--level must be between 0 and 1, got {level}")
    if refine is not None and refine < 0:
        raise ConfigError(f"--refine must be ≥ 0, got {refine}")
    if drop_highest_loss < 0:
        raise ConfigError(f"--drop-highest-loss must be ≥ 0, got {drop_highest_loss}")
    if window is not None and not window > 0:
        raise ConfigError(f"--isoflop-window must be a positive number of decades (0: all runs), got {window}")
    if robust is not None and not robust > 0:
        raise ConfigError(f"--isoflop-robust must be a positive fraction of the lowest loss, got {robust}")


def fit_study(runs: Runs, *, approaches=APPROACHES, n_boot: int = 200, seed: int = 0, level: float = 0.95,
              refine: int | None = P.DEFAULT_REFINE, drop_highest_loss: int = 0,
              window: float | None = DEFAULT_WINDOW, strict: bool = False, n_jobs: int | None = 1,
              axis: str = X.EXECUTED, reuse: "StudyFit | None" = None, require_fit: bool = True,
              robust: float | None = None) -> StudyFit:
    """Fit `approaches` to every family of `runs`, with compute counted on `axis` (`analysis.axes`).

    strict=False: an approach the data cannot support is recorded in `FamilyLaws.skipped` with the
    reason (an error only when no approach at all can be fitted and `require_fit`); strict=True: it is an error.
    drop_highest_loss leaves out each family's K highest-loss runs (reported in `excluded`).
    window: Approach 2's window, decades of N around each budget's best run (None: every run).
    reuse: a fit of the same runs on another axis whose Approach-3 L(N, D) fits are taken over.
    robust: Approach 2's parabolas with a Cauchy loss of this scale × the window's lowest loss (None: least
    squares; `analysis.isoflop`).
    """
    _check(n_boot, level, refine, drop_highest_loss, window, robust)
    runs = runs.on_axis(axis)
    approaches = tuple(approaches)
    excluded = dict(runs.excluded)
    laws = {}
    for family in runs.families():
        frame = runs.frame[runs.frame["family"] == family]
        if drop_highest_loss:
            if drop_highest_loss >= len(frame):
                raise ConfigError(f"--drop-highest-loss {drop_highest_loss} leaves no runs of {family!r}")
            frame = frame.sort_values("loss", kind="stable").iloc[: len(frame) - drop_highest_loss]
            excluded[f"{family}: among the {drop_highest_loss} highest losses (--drop-highest-loss)"] = drop_highest_loss
        laws[family] = fit_family(
            frame, family=family, approaches=approaches, n_boot=n_boot, seed=seed, level=level,
            refine=refine or None, flops_model=runs.flops_model, batch_sizes=runs.batch_sizes_of(family),
            strict=strict, n_jobs=n_jobs, window=window, axis=runs.axis, robust=robust,
            reuse=_reusable(reuse, family, len(frame), drop_highest_loss))
        if require_fit and all(a in laws[family].skipped for a in approaches):
            raise EquiscaleError(f"family {family!r}: no law could be fitted: "
                                 + "; ".join(f"{k}: {v}" for k, v in laws[family].skipped.items()))
    return StudyFit(runs=runs, laws=laws, excluded=excluded, flops_model=runs.flops_model)


def _reusable(reuse: StudyFit | None, family: str, n_runs: int, dropped: int):
    """The other axis's laws of `family` when they were fitted to the same runs (else None: refit)."""
    laws = reuse.laws.get(family) if reuse is not None and not dropped else None
    return laws if laws is not None and laws.n_runs == n_runs else None
