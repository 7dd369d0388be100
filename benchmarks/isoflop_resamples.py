"""Why Approach 2's bootstrap fails: for each family, how many budgets each of the report's resamples brackets,
and why each budget fails in the resamples where it does (the IsoFLOP fit of `analysis.isoflop.fit_curve`).

    python benchmarks/isoflop_resamples.py --storage sqlite:///docs/results/cpu/compute.db [--n-boot 200] [--seed 0]
        [--isoflop-robust 0.05]

The resamples are drawn as `analysis.points.bootstrap_points` draws them for Approach 2 (points within budgets,
seeds within points, on each family's IsoFLOP profile), with the same seed and parabola fit (`--isoflop-robust`, as
`equiscale report`'s): the counts are the report's.
"""

from __future__ import annotations

import argparse
import collections
import re

import numpy as np

from analysis.allocation import FlopsModel
from analysis.api import load_runs
from analysis.isoflop import fit_curve, fit_isoflop
from analysis.points import Points
from study.cli import run_script
from study.errors import EquiscaleError


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--storage", required=True)
    parser.add_argument("--n-boot", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--isoflop-robust", type=float, default=None, metavar="SCALE",
                        help="each budget's parabola with a Cauchy loss of this scale × the lowest loss (as the report's)")
    args = parser.parse_args()
    runs = load_runs(args.storage)
    for family in runs.families():
        rows = runs.frame[runs.frame["family"] == family]
        profile = Points.of(rows).profile()
        model = FlopsModel.from_runs(rows["params"], rows["samples"], rows["flops"])
        whole = fit_isoflop(profile.frame["budget"], profile.frame["params"], profile.frame["loss"], model=model,
                             robust=args.isoflop_robust)
        kept = {curve.budget for curve in whole.curves}   # as the report: a budget rejected on all points is not resampled
        profile = profile.subset(profile.frame["budget"].isin(kept).to_numpy())
        rng = np.random.default_rng(args.seed)
        per_draw, reasons = collections.Counter(), collections.Counter()
        for _ in range(args.n_boot):
            frame = profile.drawn(profile.draw(rng))
            ok = 0
            for budget, group in frame.groupby("budget"):
                try:
                    fit_curve(budget, group["params"], group["loss"], model, robust=args.isoflop_robust)
                    ok += 1
                except EquiscaleError as exc:
                    why = re.sub(r"N = \S+ |\[.*\]", "", str(exc).split(": ", 1)[1]).split(": its")[0].strip()
                    reasons[(f"{budget:.0e}", why)] += 1
            per_draw[ok] += 1
        mean = sum(k * v for k, v in per_draw.items()) / args.n_boot
        print(f"{family}: {len(kept)} budgets bracketed on all points; per resample {dict(sorted(per_draw.items()))} "
              f"(mean {mean:.2f}); fewer than 3 in {sum(v for k, v in per_draw.items() if k < 3)} of {args.n_boot}")
        for (budget, why), count in sorted(reasons.items(), key=lambda kv: -kv[1]):
            print(f"    {count:4d}  {budget}  {why}")
    return 0


if __name__ == "__main__":
    raise SystemExit(run_script(main))
