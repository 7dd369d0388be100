"""Which IsoFLOP design would identify Approach 2: simulated studies, decided on a stored (design) study.

For each family of the stored study, the truth is its Approach-3 law L(N, D) = E + A/N^α + B/D^β fitted to its
IsoFLOP profile, and the noise is the family's measured seed noise at each budget: relative deviations of
replicated points' seeds from their point means (`analysis.points`), drawn with replacement, so that GATr's
occasional failed runs (a seed at 2x the loss of its point's other seeds) are drawn as often as they occurred.
A candidate design `k x spacing x seeds` puts, per budget, a best point within half a spacing of the true
optimum (uniformly: the adaptive sampler's best lies on its grid, not on the optimum) and k sizes on each side
of it, `spacing` decades apart, each trained with `seeds` seeds: the sampler's flanks (`[isoflop] flank = k`,
`flank_decades = spacing`). With --study-file, the sizes a budget allows are those of its study's ladder (its
step limits): a side with less room than k spacings gets its k sizes packed evenly into the room, as the
sampler packs them; with --ladder as well, every size is then snapped to the ladder's discrete sizes (a GATr
ladder has few sizes at its small end: 509, 1,650, 3,423 parameters), each kept once, as the sampler can only
train sizes of its grid. --budgets simulates other budgets than the stored ones (the truth law extrapolated, the
ladder and seconds per trial of the nearest stored budget, seconds scaled by budget). Each simulated study is
analysed as `equiscale report` analyses a storage: point means, the bracketing rule, the windowed parabola, and
the hierarchical bootstrap of Approach 2 (points within budgets, seeds within points). Printed per design and
family: how often a is identified with an interval no wider than --width (issue 21's criterion), the median
width, and the trials and machine hours the design costs (each budget's mean measured seconds per trial in the
stored study, on the machine that ran it).

    python benchmarks/isoflop_design.py --storage sqlite:///docs/results/cpu/compute.db [--studies 20]
        [--designs 1x0.15x3 3x0.25x1 ...] [--n-boot 200] [--study-file studies/cpu.toml [--ladder] [--max-steps 32000]]
        [--budgets 1e12 3e12 1e13 3e13 1e14]
        [--noise-centre mean|median] [--robust none 0.02] [--drop-above 0.2 | --drop-beyond 0.05 | --stall-rate 0.1]
        [--point-centre mean|median|trained] [--stalls 0.24]

`--noise-centre median` draws seed deviations from their point's median (a failed seed is one high draw; the
mean leaves its point-mates about a third of its excess below the mean, symmetric noise that real runs do not
show); `--stalls R` draws each seed as a stall with probability R from the measured stalls' excesses (never below
its point, unlike `--stall-rate`, which also redraws the good seed of a point whose median stalled as a run far
below its point); `--robust` compares parabola fits (least squares, the report's today, and Cauchy losses).
"""

from __future__ import annotations

import argparse
import dataclasses

import numpy as np
import pandas as pd

from analysis import parametric as P
from analysis.allocation import FlopsModel
from analysis.api import load_runs
from analysis.bootstrap import estimate
from analysis.laws import _isoflop_values
from analysis.points import Points, bootstrap_points, stalled
from analysis.isoflop import fit_isoflop
from study.cli import run_script
from study.errors import EquiscaleError

# Trials per budget beyond the design's own points: the coarse grid's points outside the window (about 2), the lr
# sweep at the best point (about 3) and its seeds at the best lr (2 more), as the committed study spent them.
OVERHEAD_TRIALS = 7
STALL = 0.05   # a seed deviation beyond ±this is a stall draw (GATr's runs that train normally: ~1% SD)


def noise_pools(points: Points, *, centre: str = "mean", drop_above: float | None = None,
                drop_beyond: float | None = None) -> dict[float, np.ndarray]:
    """Per budget, the relative deviations of seeds from their point's centre (replicated points only); budgets
    with fewer than 6 use the family's pool. centre "mean": scaled by sqrt(k/(k-1)) so that their spread
    estimates the seed SD; "median": a failed seed (+50% over its point-mates) stays one high draw instead of also
    pulling its point-mates' deviations down by a third of its excess (GATr's bimodal seeds). drop_above: leave out
    deviations above it (e.g. 0.2: a stalled seed beside good point-mates). drop_beyond: leave out deviations beyond
    ±it, which also drops the good seed of a point whose median seed stalled (one well below its median): the noise
    of runs that do not stall, to ask what the design would do with a training fix."""
    pools, every = {}, []
    values = points.value("loss")
    for i in np.flatnonzero(points.count > 1):
        k = points.count[i]
        seeds = values[points.start[i]:points.start[i] + k]
        if centre == "median":
            dev = seeds / np.median(seeds) - 1.0
        else:
            dev = (seeds / seeds.mean() - 1.0) * np.sqrt(k / (k - 1))
        if drop_above is not None:
            dev = dev[dev <= drop_above]
        if drop_beyond is not None:
            dev = dev[np.abs(dev) <= drop_beyond]
        budget = float(points.frame["budget"].iloc[i])
        pools.setdefault(budget, []).extend(dev)
        every.extend(dev)
    return {b: np.asarray(v if len(v) >= 6 else every) for b, v in pools.items()} | {"all": np.asarray(every)}


def _with_share(good: np.ndarray, stalls: np.ndarray, rate: float) -> np.ndarray:
    """`good` plus draws from `stalls` (with replacement, a fixed rng) making `rate` of the result; `good` alone
    when there is no stall to draw."""
    k = int(round(rate * len(good) / (1.0 - rate))) if len(stalls) else 0
    return np.concatenate([good, np.random.default_rng(0).choice(stalls, k)]) if k else good


def with_stall_rate(pools: dict, rate: float) -> dict:
    """Each pool rebuilt as its draws within ±STALL plus its draws beyond it, picked at random (with replacement, a
    fixed rng) to make `rate` of the pool: what a design does once a training change makes stalls that rare. A pool
    without a stall draw stays as it is."""
    return {budget: _with_share(dev[np.abs(dev) <= STALL], dev[np.abs(dev) > STALL], rate)
            for budget, dev in pools.items()}


def stall_excesses(points: Points) -> np.ndarray:
    """The measured stalls (`analysis.points.stalled`: more than STALLED, 15%, above their point's lowest seed), as
    their excess over that seed (always positive: a stall is a run that did not train, never one better than its
    point's trained level)."""
    values, out = points.value("loss"), []
    for i in np.flatnonzero(points.count > 1):
        seeds = values[points.start[i]:points.start[i] + points.count[i]]
        out.extend(seeds[stalled(seeds)] / seeds.min() - 1.0)
    return np.asarray(out)


def with_stalls(pools: dict, excesses: np.ndarray, rate: float) -> dict:
    """The noise as a mixture: a draw is a stall with probability `rate` (its deviation one of the measured stall
    `excesses`) and otherwise one of the pool's draws within ±STALL (runs that train). Unlike `with_stall_rate`,
    no draw is a run far below its point (the good seed of a point whose median stalled is not a stall). Encoded
    as a pool of draws: the normal ones, and stall excesses to make `rate` of it (with replacement, a fixed rng)."""
    return {budget: _with_share(dev[np.abs(dev) <= STALL], excesses, rate) for budget, dev in pools.items()}


def optimum(law: P.ParametricFit, model: FlopsModel, budget: float) -> float:
    """log10 N of the law's minimum at one budget (a fine grid over 4 decades around the largest feasible N)."""
    logn = np.linspace(1.0, 9.0, 8001)
    n = 10.0**logn
    d = model.samples(n, budget)
    ok = d > 1
    loss = np.where(ok, law.predict(n, np.where(ok, d, 2.0)), np.inf)
    return float(logn[np.argmin(loss)])


def ladder_sizes(study_file: str, family: str, *, max_steps: int | None = None,
                 budgets=None) -> dict[float, np.ndarray]:
    """budget -> the log10 N of every size the sampler can train for `family` (its ladder at the study's grid
    depth, within its step limits; `max_steps`: with this upper step limit instead), ascending. `budgets`: these
    budgets instead of the study file's, each with the settings (batch size, …) of the file's nearest budget."""
    from study.config import load_config, resolve
    from study.samplers import _ladder

    specs = {float(spec.budget): spec for spec in resolve(load_config(study_file)).studies
             if spec.family_name == family}
    out = {}
    for budget in (specs if budgets is None else [float(b) for b in budgets]):
        spec = specs[min(specs, key=lambda b: abs(np.log(b / budget)))]
        spec = dataclasses.replace(spec, budget=budget)
        if max_steps is not None:
            spec = dataclasses.replace(spec, step_range=(spec.step_range[0], max_steps))
        out[budget] = np.sort(np.log10(np.asarray(_ladder(spec).params, float)))
    return out


def snap(sizes: list[float], ladder: np.ndarray, centre: float) -> list[float]:
    """A design's sizes on a discrete ladder, as the sampler trains them: the best is the ladder size nearest the
    optimum; each other target the ladder size nearest it, kept once, on its own side of the best."""
    best = float(ladder[np.argmin(np.abs(ladder - centre))])
    out = {best}
    for target in sizes:
        nearest = float(ladder[np.argmin(np.abs(ladder - target))])
        if (nearest - best) * (target - centre) > 0:        # on the target's side of the best
            out.add(nearest)
    return sorted(out)


def design_sizes(centre: float, k: int, spacing: float, lo: float = -np.inf, hi: float = np.inf) -> list[float]:
    """log10 N of a design's sizes: the best (clamped into [lo, hi]) and k per side, `spacing` apart, packed
    evenly into the room [lo, hi] leaves on a side (none on a side with no room)."""
    centre = min(max(centre, lo), hi)
    out = [centre]
    for direction, room in ((-1, centre - lo), (1, hi - centre)):
        reach = min(k * spacing, room)
        if reach > 1e-9:
            out += [centre + direction * reach * j / k for j in range(1, k + 1)]
    return sorted(out)


def simulate(law, model, budgets, pools, design, rng, *, limits=None, ladders=None) -> pd.DataFrame:
    """One simulated study's trials under `design` = (k per side, spacing, seeds); `limits`: budget -> the
    (lowest, highest) log10 N its step limits allow; `ladders`: budget -> its discrete sizes (log10 N), onto which
    the design's sizes are snapped (`snap`)."""
    k, spacing, seeds = design
    rows = []
    for budget in budgets:
        centre = optimum(law, model, budget) + rng.uniform(-spacing / 2, spacing / 2)
        pool = pools.get(budget, pools["all"])
        sizes = design_sizes(centre, k, spacing, *(limits or {}).get(budget, (-np.inf, np.inf)))
        if ladders is not None:
            sizes = snap(sizes, ladders[budget], centre)
        for logn in sizes:
            n = 10.0**logn
            d = float(model.samples(n, budget))
            mean = float(law.predict(n, d))
            for s in range(seeds):
                rows.append({"family": "f", "budget": budget, "params": n, "samples": d, "loss":
                             mean * (1.0 + rng.choice(pool)), "compute": budget, "seed": s,
                             "shape": f"{logn:.6f}", "lr": 1e-3})
    return pd.DataFrame(rows)


def identified(frame: pd.DataFrame, model: FlopsModel, n_boot: int, seed: int, *, robust: float | None = None,
               centre: str = "mean") -> tuple[bool, float]:
    """Whether the report would give a bounded interval for a on this study, and its width (nan: none); robust:
    the parabolas' Cauchy scale (`analysis.isoflop`; None: least squares, what the report fits today); centre: a
    point's loss over its seeds, the mean (the report's) or the median (a design option)."""
    points = Points.of(frame, centre=centre).profile()
    try:
        fit = fit_isoflop(points.frame["budget"], points.frame["params"], points.frame["loss"], model=model,
                          robust=robust)
    except EquiscaleError:
        return False, float("nan")
    kept = points.subset(points.frame["budget"].isin({c.budget for c in fit.curves}).to_numpy())
    draws = bootstrap_points(_isoflop_values(model, 0.5, False, robust), kept, n_boot, seed)
    if "a" not in draws:                # no resample could be fitted
        return False, float("nan")
    a = estimate(fit.a, draws["a"])
    return a.has_interval, (a.high - a.low) if a.has_interval else float("nan")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--storage", required=True)
    parser.add_argument("--designs", nargs="+", default=["1x0.15x3", "2x0.15x1", "3x0.25x1", "3x0.15x2", "4x0.2x1"],
                        help="sizes per side of the best x spacing (decades) x seeds per size")
    parser.add_argument("--studies", type=int, default=20, help="simulated studies per design and family")
    parser.add_argument("--n-boot", type=int, default=200)
    parser.add_argument("--width", type=float, default=0.35)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--study-file", help="leave out sizes beyond this study file's step limits")
    parser.add_argument("--ladder", action="store_true",
                        help="with --study-file: snap the sizes to the study's discrete ladder (its grid's sizes)")
    parser.add_argument("--max-steps", type=int, default=None,
                        help="with --study-file: its ladder under this upper step limit instead of the file's")
    parser.add_argument("--budgets", type=float, nargs="+", default=None,
                        help="simulate these budgets instead of the stored study's (the truth law extrapolated; with "
                             "--ladder, each the nearest stored budget's settings; seconds per trial scaled by budget)")
    parser.add_argument("--families", nargs="+", help="these families only")
    parser.add_argument("--robust", nargs="+", default=["none"], metavar="SCALE",
                        help="parabola fits to compare: none (least squares) or a Cauchy scale, e.g. none 0.02")
    parser.add_argument("--drop-above", type=float, default=None, metavar="DEV",
                        help="leave seed deviations above DEV out of the noise (0.2: a stalled seed)")
    parser.add_argument("--drop-beyond", type=float, default=None, metavar="DEV",
                        help=f"leave seed deviations beyond +-DEV out of the noise ({STALL}: every stalled point too)")
    parser.add_argument("--stall-rate", type=float, default=None, metavar="R",
                        help=f"the noise's deviations beyond +-{STALL} resampled to this fraction of it (0.1: 1 in 10)")
    parser.add_argument("--stalls", type=float, default=None, metavar="R",
                        help="each seed stalls with probability R, ending its point's level times 1 + one of the "
                             "measured stalls' excesses over their point's lowest seed; otherwise a draw within "
                             "+-STALL (with_stalls)")
    parser.add_argument("--point-centre", choices=["mean", "median", "trained"], default="mean",
                        help="a simulated point's loss over its seeds: the mean (the report's), the median, or the "
                             "mean of the seeds that trained (within 15%% of the point's lowest)")
    parser.add_argument("--noise-centre", choices=["mean", "median"], default="mean",
                        help="seed deviations relative to their point's mean or median (see noise_pools)")
    args = parser.parse_args()
    designs = []
    for text in args.designs:
        try:
            k, spacing, seeds = text.split("x")
            designs.append((int(k), float(spacing), int(seeds)))
        except ValueError:
            parser.error(f"design {text!r}: give sizes per side x spacing x seeds, e.g. 3x0.25x1")
    try:
        fits = [None if text == "none" else float(text) for text in args.robust]
    except ValueError:
        fits = [0.0]
    if any(fit is not None and not fit > 0 for fit in fits):
        parser.error("--robust takes none or a positive number, e.g. --robust none 0.02")
    for name in ("stall_rate", "stalls"):
        rate = getattr(args, name)
        if rate is not None and not 0 <= rate < 1:
            parser.error(f"--{name.replace('_', '-')} takes a fraction in [0, 1), got {rate}")
    if args.stall_rate is not None and args.stalls is not None:
        parser.error("give --stall-rate or --stalls, not both")
    if (args.ladder or args.max_steps is not None) and not args.study_file:
        parser.error("--ladder and --max-steps need --study-file")
    if args.max_steps is not None and args.max_steps < 1:
        parser.error(f"--max-steps takes a positive number of steps, got {args.max_steps}")
    if args.budgets and not all(np.isfinite(b) and b > 0 for b in args.budgets):
        parser.error(f"--budgets takes positive FLOP budgets, got {' '.join(f'{b:g}' for b in args.budgets)}")
    runs = load_runs(args.storage)
    print(f"design study: {args.storage}; {args.studies} simulated studies per design; criterion: a identified with "
          f"a 95% interval no wider than {args.width}"
          + (f"; sizes limited by the step limits of {args.study_file}" if args.study_file else ""))
    for family in args.families or runs.families():
        rows = runs.frame[runs.frame["family"] == family]
        points = Points.of(rows).profile()
        model = FlopsModel.from_runs(rows["params"], rows["samples"], rows["flops"])
        f = points.frame
        law = P.fit_parametric(f["params"].to_numpy(), f["samples"].to_numpy(), f["loss"].to_numpy())
        pools = noise_pools(points, centre=args.noise_centre, drop_above=args.drop_above,
                            drop_beyond=args.drop_beyond)
        if args.stall_rate is not None:
            pools = with_stall_rate(pools, args.stall_rate)
        if args.stalls is not None:
            excesses = stall_excesses(Points.of(rows))   # every lr: a stall is a stall
            pools = with_stalls(pools, excesses, args.stalls)
            share = np.mean([np.mean(np.abs(v) > STALL) for v in pools.values()])
            print(f"{family}: {len(excesses)} measured stalls, excess over their point's lowest seed "
                  + (f"{np.min(excesses):.0%} to {np.max(excesses):.0%} (median {np.median(excesses):.0%}); "
                     f"stalls are {share:.1%} of the noise draws" if len(excesses) else "none: no stalls drawn"))
        stored = sorted(f["budget"].unique())
        measured = {b: float(rows[rows["budget"] == b]["seconds"].mean()) for b in stored}
        budgets = sorted(args.budgets) if args.budgets else stored
        nearest = {b: min(stored, key=lambda s: abs(np.log(s / b))) for b in budgets}
        seconds = {b: measured[nearest[b]] * b / nearest[b] for b in budgets}
        sd = {b: float(np.std(pools.get(b, pools['all']))) for b in budgets}
        sizes = (ladder_sizes(args.study_file, family, max_steps=args.max_steps, budgets=args.budgets)
                 if args.study_file else None)
        limits = {b: (float(v[0]), float(v[-1])) for b, v in sizes.items()} if sizes else None
        ladders = sizes if args.ladder else None          # snap to the ladder, or only keep within its limits
        print(f"\n{family}: truth E={law.E:.4g} alpha={law.alpha:.3f} beta={law.beta:.3f}; seed SD per budget "
              + ", ".join(f"{b:.0e} {sd[b]:.1%}" for b in budgets))
        for design in designs:
            for robust in fits:
                rng = np.random.default_rng(args.seed)
                results = [identified(simulate(law, model, budgets, pools, design, rng, limits=limits,
                                               ladders=ladders), model,
                                      args.n_boot, args.seed + i, robust=robust, centre=args.point_centre)
                           for i in range(args.studies)]
                ok = [w for good, w in results if good and w <= args.width]
                widths = [w for good, w in results if good]
                trials = (2 * design[0] + 1) * design[2] + OVERHEAD_TRIALS
                hours = sum(trials * seconds[b] for b in budgets) / 3600
                fit = "least squares" if robust is None else f"Cauchy {robust:g}"
                print(f"  {design[0]} per side x {design[1]:g} dec x {design[2]} seeds, {fit}: meets the criterion in "
                      f"{len(ok)}/{args.studies}, identified in {len(widths)}/{args.studies}, median width "
                      f"{np.median(widths) if widths else float('nan'):.2f}; {trials} trials per budget, "
                      f"{hours:.1f} trial-hours ({hours / 2:.1f} h on 2 slots)")
    return 0


if __name__ == "__main__":
    raise SystemExit(run_script(main))
