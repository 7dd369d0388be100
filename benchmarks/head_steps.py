"""Where a family's IsoFLOP profile crosses a change of its attention-head count, and what the loss does there.

    python benchmarks/head_steps.py --storage sqlite:///docs/results/cpu-confirm2/compute.db

The built-in networks derive their head count from the width (transformer: max(1, width // 32); GATr:
max(1, mv_channels // 8)), so a profile over N can change architecture part-way. Per family and budget this
prints the profile's points (the report's: rule lr, mean over seeds) grouped by head count: how many, the
sizes they span and the best mean loss in each group; then the best point, and whether its neighbours in N
have a different head count (its "minimum" is then a step between two architectures, not the bottom of a
smooth curve). Last, the change of loss across each boundary: the best of the sizes just above it ÷ the best
just below it, each side within `--decades` of the boundary. The 2-head families (transformer-2h, ...) keep 2
heads at every size: their profiles have no boundary.
"""

from __future__ import annotations

import argparse

import numpy as np

from analysis.api import load_runs
from analysis.points import Points
from study.cli import run_script
from study.models import gatr, get_family, transformer

RULES = {  # the network's own rule, from its shape, by the module that builds it
    transformer.build: lambda shape: transformer.heads_for(shape["width"]),
    gatr.build: lambda shape: gatr.heads_for(shape["mv_channels"]),
}


def heads_rule(name: str):
    """shape -> head count of the installed family `name`: its fixed `heads` option (the 2-head families), else
    its network's rule; None for a family built some other way."""
    family = get_family(name)
    fixed = dict(getattr(family, "options", ())).get("heads")
    if fixed is not None:
        return lambda shape: fixed
    return RULES.get(getattr(family, "build_fn", None))


def profiles(url: str):
    """(family, budget, frame of the profile's points sorted by N, with a `heads` column)."""
    runs = load_runs(url)
    for family in runs.families():
        rule = heads_rule(family)
        if rule is None:
            continue
        frame = Points.of(runs.frame[runs.frame["family"] == family]).profile().frame
        frame = frame[frame["profile"]].copy()
        frame["heads"] = [rule(shape) for shape in frame["shape"]]
        for budget, group in frame.groupby("budget"):
            yield family, float(budget), group.sort_values("params").reset_index(drop=True)


def step_ratio(group, lower: int, upper: int, decades: float) -> float:
    """Best mean loss of the `upper`-head points ÷ that of the `lower`-head points, each within `decades` of
    the boundary between them in log10 N; NaN when a side has no point there."""
    below, above = group[group["heads"] == lower], group[group["heads"] == upper]
    if below.empty or above.empty:
        return float("nan")
    edge = np.sqrt(below["params"].max() * above["params"].min())         # geometric middle of the boundary
    near_below = below[np.log10(edge / below["params"]) <= decades]
    near_above = above[np.log10(above["params"] / edge) <= decades]
    return float(near_above["loss"].min() / near_below["loss"].min())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--storage", required=True)
    parser.add_argument("--decades", type=float, default=0.3, help="each side of a boundary: this far in log10 N")
    args = parser.parse_args()
    for family, budget, group in profiles(args.storage):
        parts = []
        for heads, part in group.groupby("heads"):
            parts.append(f"{heads} head(s): {len(part)} points, N {part['params'].min():.3g}–"
                         f"{part['params'].max():.3g}, best {part['loss'].min():.4g}")
        best = int(group["loss"].idxmin())
        sides = [group["heads"][i] for i in (best - 1, best + 1) if 0 <= i < len(group)]
        at_change = any(h != group["heads"][best] for h in sides)
        steps = [f"{a}→{b} heads ×{step_ratio(group, a, b, args.decades):.3f}"
                 for a, b in zip(sorted(set(group["heads"]))[:-1], sorted(set(group["heads"]))[1:])]
        print(f"{family} {budget:.0e}: " + "; ".join(parts))
        print(f"    best N {group['params'][best]:.3g} ({group['heads'][best]} head(s))"
              + (", next to a head-count change" if at_change else "")
              + ("; across the boundary: " + ", ".join(steps) if steps else ""))
    return 0


if __name__ == "__main__":
    raise SystemExit(run_script(main))
