"""Best-loss ratios between two families per budget (or per training-set size), with bootstrap intervals.

The ratio at a group (a budget, a training-set size) is the numerator family's lowest loss there divided
by the denominator's. A resample draws each family's runs of that group with replacement (as many as it
has) and takes the ratio of the two lowest, as the L(C) fit resamples its best run per budget; the
interval reflects which run happens to be best, not seed-to-seed noise of one run. With a single run of
either family at a group there is nothing to resample: the ratio has no interval.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from analysis.bootstrap import LEVEL, Estimate, estimate


@dataclass(frozen=True)
class Ratio:
    """numerator ÷ denominator best loss at one group value, with its interval."""

    at: float
    numerator: str
    denominator: str
    estimate: Estimate
    best_numerator: float
    best_denominator: float
    runs: tuple[int, int] = (0, 0)  # runs of the numerator and the denominator family at this group

    def why_no_interval(self) -> str:
        """'' when the ratio has an interval (or is not identified), else why it has none."""
        if self.estimate.problem or self.estimate.has_interval:
            return ""
        return "a single run of one family: no interval" if min(self.runs) < 2 else "no bootstrap: no interval"

    def verdict(self) -> str:
        """'lower' (interval below 1), 'higher' (above 1), 'undecided' (contains 1 or no interval)."""
        e = self.estimate
        if e.problem or not e.has_interval:
            return "undecided"
        return "lower" if e.high < 1 else "higher" if e.low > 1 else "undecided"


def best_ratios(frame: pd.DataFrame, *, by: str, numerator: str, denominator: str, n_boot: int = 200,
                seed: int = 0, level: float = LEVEL, loss: str = "loss") -> list[Ratio]:
    """A `Ratio` at every value of `by` where both families have runs (columns family, `by`, `loss`)."""
    num, den = (frame[frame["family"] == f] for f in (numerator, denominator))
    shared = sorted(set(num[by]) & set(den[by]))
    out = []
    for i, at in enumerate(shared):
        a = num.loc[num[by] == at, loss].to_numpy(float)
        b = den.loc[den[by] == at, loss].to_numpy(float)
        rng = np.random.default_rng([seed, i])
        draws = [rng.choice(a, a.size).min() / rng.choice(b, b.size).min()
                 for _ in range(n_boot if min(a.size, b.size) > 1 else 0)]
        point = a.min() / b.min()
        out.append(Ratio(float(at), numerator, denominator, estimate(point, draws, level=level, positive=True),
                         float(a.min()), float(b.min()), (int(a.size), int(b.size))))
    return out
