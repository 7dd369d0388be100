"""Data studies: loss vs training-set size per family, and the gap between two families vs epochs.

A data study (`data/<family>/<train_size>[/<steps>]`, study kind DATA) trains one fixed shape per family on the
first n training scenes for a fixed number of steps (v2: several lengths per size, `analysis.lengths`), several
trials differing only in learning rate (and seed). The law and the gap curves use the best point (lowest mean
loss over seeds) at the longest length of each (family, n):

- `fit_data_law`: L(n) = coef · n^(−alpha) by least squares in log-log through the best loss per size,
  with a percentile bootstrap that resamples the sizes (cases) and, within each drawn size, its trials
  (so which learning rate is best varies too). A resample needs 2 distinct sizes; the fit on all runs 3.
- `epoch_gap`, `gap_curves`: the ratio of two learning curves (intermediate values: epoch -> validation loss on a
  fixed probe subset) at the epochs both recorded; at none in common, one curve is interpolated
  (linearly in log epoch and log loss) onto the other's epochs inside their overlap, and flagged.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import optuna
import pandas as pd

from analysis.bootstrap import LEVEL, Estimate, estimate
from analysis.lengths import LengthAnalysis, analyse_lengths
from analysis.points import Points
from analysis.power import PowerLaw, fit_power_law
from analysis.trials import open_studies, read_claims
from study import schema
from study.errors import EquiscaleError

MIN_SIZES = 3  # the fit on all runs needs this many training-set sizes
SIZE = schema.TRAIN_SIZE  # the frame column of the training-set size (the stored name)
COLUMNS = ["family", SIZE, "loss", schema.VAL_LOSS, schema.TEST_LOSS, "epochs", "lr", "params",
           "equivariance_error", "trial", "study", "curve", schema.STEPS, schema.SEED, schema.SHAPE]


class NoDataStudies(EquiscaleError):
    """The storage holds no data study."""


@dataclass
class DataRuns:
    """COMPLETE trials of data studies (one row each; `curve`: epoch -> probe validation loss; `steps`: the
    study's training length, `study_length`) and the reasons trials were left out (reason -> count)."""

    frame: pd.DataFrame
    excluded: dict[str, int] = field(default_factory=dict)
    source: str = ""
    stored_claims: list = field(default_factory=list)  # the distinct `schema.ClaimFamilies` the data studies store

    def families(self) -> list[str]:
        return sorted(self.frame["family"].unique())

    def longest(self) -> pd.DataFrame:
        """One row per point (one lr: the mean over its seeds, `analysis.points`) at the longest training length
        of each (family, train_size): what the data law and the best per size use (v1: every trial)."""
        f = self.frame
        longest = f.groupby(["family", SIZE])[schema.STEPS].transform("max")
        return Points.of(f[(f[schema.STEPS] == longest) | longest.isna()], group=SIZE).frame

    def best(self) -> pd.DataFrame:
        """The best point (lowest mean loss) at the longest length of each (family, train_size), sorted by family
        and size."""
        order = self.longest().sort_values(["family", SIZE, "loss", "trial"], kind="stable")
        return order.groupby(["family", SIZE], sort=True).head(1).reset_index(drop=True)


def _count(excluded: dict, reason: str) -> None:
    excluded[reason] = excluded.get(reason, 0) + 1


def load_data_storage(url: str, *, loss: str = schema.VAL_LOSS, opened=None) -> DataRuns:
    """Every COMPLETE trial of every data study in `url` (NoDataStudies when there is none).

    opened: `analysis.trials.open_studies(url)` already done (the storage is then read once).
    """
    storage, summaries = opened or open_studies(url)
    rows, excluded, studies, claims = [], {}, 0, []
    for summary in summaries:
        attrs = schema.read_study_attrs(summary.user_attrs)
        if attrs is None or attrs.kind != schema.DATA:
            continue
        studies += 1
        read_claims(summary, url, claims)
        if not attrs.train_size > 0:
            _count(excluded, f"study {summary.study_name!r} lacks a positive {schema.TRAIN_SIZE}")
            continue
        study = optuna.load_study(study_name=summary.study_name, storage=storage)
        first = len(rows)
        for trial in study.get_trials(deepcopy=False):
            if trial.state != optuna.trial.TrialState.COMPLETE:
                _count(excluded, f"trial state {trial.state.name}")
                continue
            record = schema.read_trial(trial)
            value = record.loss(loss)
            if value is None or not np.isfinite(value) or value <= 0:
                _count(excluded, f"non-finite or non-positive {loss}")
                continue
            curve = {int(k): float(v) for k, v in trial.intermediate_values.items()
                     if int(k) >= 1 and np.isfinite(v) and v > 0}
            rows.append([attrs.family, attrs.train_size, float(value), record.loss(schema.VAL_LOSS),
                         _or_nan(record.test_loss), _or_nan(record.epochs), _or_nan(record.lr),
                         _or_nan(record.params), _or_nan(record.equivariance_error), record.number,
                         summary.study_name, curve, _or_nan(record.steps), _or_nan(record.seed), record.shape])
        length = study_length(summary.study_name, attrs, [row[-3] for row in rows[first:]])
        for row in rows[first:]:
            row[-3] = length
    if not studies:
        raise NoDataStudies(f"storage {url!r} holds no data study (`data/<family>/<size>[/<steps>]`)")
    frame = pd.DataFrame(rows, columns=COLUMNS)
    if frame.empty:
        raise EquiscaleError(f"no COMPLETE trials in the data studies of {url}"
                             + "".join(f"; left out {v}: {k}" for k, v in excluded.items()))
    return DataRuns(frame, excluded, source=url, stored_claims=claims)


def study_length(name: str, attrs: schema.StudyAttrs, steps) -> float:
    """The training length of a data study: the steps its name carries (v2, `schema.data_study_name` with
    steps), else the most steps a COMPLETE trial of it stored (v1: every trial the study's `steps`), so a run
    that ended early (time cap) is counted at its study's length. NaN without either."""
    last = name.rsplit("/", 1)[-1]
    if last.isdigit() and name == schema.data_study_name(attrs.family, attrs.train_size, int(last)):
        return float(last)
    finite = [s for s in steps if np.isfinite(s)]
    return float(max(finite)) if finite else float("nan")


def _or_nan(value) -> float:
    return float("nan") if value is None else float(value)


def combine(parts: list[DataRuns]) -> DataRuns:
    """Data runs from several storages as one (exclusion counts added)."""
    excluded: dict[str, int] = {}
    for part in parts:
        for reason, count in part.excluded.items():
            excluded[reason] = excluded.get(reason, 0) + count
    frame = pd.concat([p.frame for p in parts], ignore_index=True)
    claims = list(dict.fromkeys(c for p in parts for c in p.stored_claims))
    return DataRuns(frame, excluded, source=", ".join(p.source for p in parts), stored_claims=claims)


@dataclass
class DataLaw:
    """L(n) = coef · n^(−alpha) of one family through the best loss per training-set size."""

    family: str
    sizes: tuple[int, ...]
    best_loss: tuple[float, ...]
    law: PowerLaw | None = None
    estimates: dict[str, Estimate] = field(default_factory=dict)  # "alpha", "coef"
    samples: dict[str, np.ndarray] = field(default_factory=dict)
    problem: str = ""  # non-empty: no law (why)
    level: float = LEVEL

    def predict(self, n) -> np.ndarray:
        return self.law.coef * np.asarray(n, float) ** (-self.law.exponent)


def fit_data_law(frame: pd.DataFrame, *, family: str, n_boot: int = 200, seed: int = 0,
                 level: float = LEVEL) -> DataLaw:
    """The data law of one family's trials (columns train_size, loss); not identified below MIN_SIZES sizes."""
    sizes = np.sort(frame[SIZE].unique())
    best = frame.groupby(SIZE)["loss"].min().reindex(sizes).to_numpy(float)
    out = DataLaw(family=family, sizes=tuple(int(n) for n in sizes), best_loss=tuple(float(v) for v in best),
                  level=level)
    if sizes.size < MIN_SIZES:
        out.problem = f"the data law needs at least {MIN_SIZES} training-set sizes, got {sizes.size}"
        return out
    out.law = fit_power_law(sizes, best)
    out.samples = _bootstrap(frame, n_boot, seed)
    point = {"alpha": out.law.exponent, "coef": out.law.coef}
    out.estimates = {k: estimate(v, out.samples.get(k, []), level=level, positive=k == "coef") for k, v in point.items()}
    return out


def _bootstrap(frame: pd.DataFrame, n_boot: int, seed: int) -> dict[str, np.ndarray]:
    """alpha and coef on resamples of the sizes, each drawn size with its trials resampled (best kept)."""
    if not n_boot:
        return {}
    groups = [g["loss"].to_numpy(float) for _, g in frame.groupby(SIZE, sort=True)]
    sizes = np.sort(frame[SIZE].unique()).astype(float)
    rng = np.random.default_rng(seed)
    alpha, coef = np.full(n_boot, np.nan), np.full(n_boot, np.nan)
    for i in range(n_boot):
        picks = rng.integers(0, len(sizes), len(sizes))
        if np.unique(picks).size < 2:
            continue
        best = np.array([rng.choice(groups[j], size=len(groups[j])).min() for j in picks])
        slope, intercept = np.polyfit(np.log(sizes[picks]), np.log(best), 1)
        alpha[i], coef[i] = -slope, np.exp(intercept)
    return {"alpha": alpha, "coef": coef}


@dataclass(frozen=True)
class GapCurve:
    """numerator's ÷ denominator's learning-curve loss at each epoch, at one training-set size."""

    train_size: int
    numerator: str
    denominator: str
    epochs: np.ndarray
    ratio: np.ndarray
    interpolated: bool = False  # the denominator's curve was interpolated onto the numerator's epochs


def epoch_gap(numerator: dict[int, float], denominator: dict[int, float]) -> tuple[np.ndarray, np.ndarray, bool]:
    """(epochs, numerator ÷ denominator, interpolated) over the epochs both curves recorded; with fewer
    than 2 in common, the denominator interpolated in (log epoch, log loss) at the numerator's epochs
    inside both curves' range. Empty arrays when the curves do not overlap."""
    common = sorted(set(numerator) & set(denominator))
    if len(common) >= 2:
        epochs = np.array(common, float)
        return epochs, np.array([numerator[e] / denominator[e] for e in common]), False
    if not numerator or not denominator:
        return np.empty(0), np.empty(0), False
    ex, ey = (np.array(sorted(c), float) for c in (numerator, denominator))
    lo, hi = max(ex[0], ey[0]), min(ex[-1], ey[-1])
    epochs = ex[(ex >= lo) & (ex <= hi)]
    if epochs.size == 0:
        return np.empty(0), np.empty(0), False
    log_den = np.interp(np.log(epochs), np.log(ey), np.log([denominator[int(e)] for e in ey]))
    ratio = np.array([numerator[int(e)] for e in epochs]) / np.exp(log_den)
    return epochs, ratio, True


def gap_curves(best: pd.DataFrame, numerator: str, denominator: str) -> list[GapCurve]:
    """One GapCurve per training-set size where both families have a best trial with a learning curve."""
    out = []
    num = best[best["family"] == numerator].set_index(SIZE)
    den = best[best["family"] == denominator].set_index(SIZE)
    for n in sorted(set(num.index) & set(den.index)):
        epochs, ratio, interpolated = epoch_gap(num.at[n, "curve"], den.at[n, "curve"])
        if epochs.size:
            out.append(GapCurve(int(n), numerator, denominator, epochs, ratio, interpolated))
    return out


def small_sizes(sizes) -> list[int]:
    """The smaller half of the training-set sizes (at least the smallest; the median of an odd count is
    not small): where the report judges claim 1."""
    sizes = sorted({int(n) for n in sizes})
    return sizes[: max(1, len(sizes) // 2)]


@dataclass
class DataAnalysis:
    """Everything the report shows about data studies: the best trial per (family, size), each family's
    data law, for each (numerator, denominator) pair of families the best-loss ratio per (size, training
    length) with its trend in the length (`analysis.lengths`), and the gap vs epochs per size."""

    runs: DataRuns
    best: pd.DataFrame
    laws: dict[str, DataLaw]
    lengths: LengthAnalysis
    gaps: dict[tuple[str, str], list[GapCurve]]
    small: list[int]  # where claim 1 is judged (`_small`)


def analyse(runs: DataRuns, *, ratio_pairs=(), gap_pairs=(), n_boot: int = 200, seed: int = 0,
            level: float = LEVEL) -> DataAnalysis:
    """Fit every family's data law; best-loss ratios per (size, length) for each (numerator, denominator) in
    `ratio_pairs`, gap curves for each in `gap_pairs` (pairs with a family not present are left out). The small
    sizes are those of the sizes every family of `gap_pairs` (the claim's families; none given: every family)
    trained, so a variant trained at one size only (no translations) does not narrow them."""
    families = runs.families()
    best = runs.best()
    points = runs.longest()
    laws = {f: fit_data_law(points[points["family"] == f], family=f, n_boot=n_boot, seed=seed, level=level)
            for f in families}
    present = lambda pairs: [(a, b) for a, b in pairs if a in families and b in families]  # noqa: E731
    lengths = analyse_lengths(runs.frame, present(ratio_pairs), n_boot=n_boot, seed=seed, level=level)
    gaps = {(a, b): gap_curves(best, a, b) for a, b in present(gap_pairs)}
    core = [f for f in dict.fromkeys(f for p in present(gap_pairs) for f in p)] or families
    shared = set.intersection(*(set(runs.frame.loc[runs.frame["family"] == f, SIZE]) for f in core))
    return DataAnalysis(runs, best, laws, lengths, gaps, _small(runs.frame, shared, core))


def _small(frame: pd.DataFrame, shared: set, core) -> list[int]:
    """Where claim 1 is judged: the shared sizes at which every core family trained several lengths (a v2
    design marks its small sizes so), else `small_sizes` of the shared sizes (v1: one length everywhere)."""
    lengths = frame.groupby(["family", SIZE])[schema.STEPS].nunique()
    several = sorted(int(n) for n in shared if all(lengths.get((f, n), 0) >= 2 for f in core))
    return several or (small_sizes(shared) if shared else [])
