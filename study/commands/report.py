"""`equiscale report`: one Markdown report (and an HTML page with the figures inline) of compute and data studies.

Writes into --out: report.md, report.html, figures/*.png and allocation.csv (with compute studies). The
report is built in memory and written all or nothing (`study.output.write_files`). The default bootstrap
(REPORT_BOOTSTRAP resamples) keeps `equiscale report` on the committed CPU study within seconds.
"""

from __future__ import annotations

import sys

import pandas as pd

from analysis import axes as X
from analysis.api import fit_study
from analysis.data_efficiency import NoDataStudies, analyse, combine, load_data_storage
from analysis.export import parse_budgets
from analysis.report import build_report, data_pairs
from analysis.trials import OnlyDataStudies, Runs, claims_of, load_storage, open_studies
from study import schema
from study.commands.fit import add_compute_argument, add_robust_argument
from study.errors import ConfigError, EquiscaleError
from study.output import check_output_dir, write_files
from study.storage import DEFAULT_STORAGE

REPORT_BOOTSTRAP = 200


def add_arguments(parser) -> None:
    parser.add_argument("--storage", action="append", metavar="URL",
                        help=f"Optuna storage with compute and/or data studies; give it again for more storages "
                             f"(default {DEFAULT_STORAGE})")
    parser.add_argument("--out", default="report", metavar="DIR", help="output folder (default ./report)")
    parser.add_argument("--budgets", metavar="C1,C2,…",
                        help="budgets of the allocation table (default: the trained budgets)")
    parser.add_argument("--loss", choices=(schema.VAL_LOSS, schema.TEST_LOSS), default=schema.VAL_LOSS,
                        help=f"which stored loss the laws are fitted to and runs are selected on (default "
                             f"{schema.VAL_LOSS}; the tables show the test loss of the selected runs beside it)")
    add_compute_argument(parser)
    add_robust_argument(parser)
    names = parser.add_argument_group("claims (default: as the studies store it, else the flagship's)")
    names.add_argument("--equivariant", metavar="F", help="the family the claims call equivariant (e.g. gatr)")
    names.add_argument("--baselines", metavar="F1,F2", help="its baselines, comma-separated (e.g. transformer,transformer-aug)")
    names.add_argument("--augmented", metavar="F", help="the baseline trained with augmentation (claim 1; "
                                                          "'none' for none)")
    parser.add_argument("--bootstrap", type=int, default=REPORT_BOOTSTRAP, metavar="N",
                        help=f"bootstrap resamples for every interval (default {REPORT_BOOTSTRAP})")
    parser.add_argument("--level", type=float, default=0.95, help="interval level (default 0.95)")
    parser.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")


def _load(urls: list[str], loss: str):
    """(compute Runs or None, data runs or None) from every storage, each with the claims its studies store; a
    storage with neither is an error."""
    compute, data = [], []
    for url in urls:
        opened = open_studies(url)
        if not opened[1]:
            raise EquiscaleError(f"storage {url!r} holds no studies (run `equiscale run` first)")
        try:
            compute.append(load_storage(url, loss=loss, opened=opened))
        except OnlyDataStudies:
            pass
        try:
            data.append(load_data_storage(url, loss=loss, opened=opened))
        except NoDataStudies:
            pass
    return _merge(compute), combine(data) if data else None


def _merge(parts: list[Runs]) -> Runs | None:
    if not parts:
        return None
    if len(parts) == 1:
        return parts[0]
    excluded, batch, stored = {}, {}, []
    for p in parts:
        stored += [c for c in p.stored_claims if c not in stored]
        batch.update(p.batch_sizes)
        for reason, count in p.excluded.items():
            excluded[reason] = excluded.get(reason, 0) + count
    return Runs(pd.concat([p.frame for p in parts], ignore_index=True), excluded, batch,
                source=", ".join(p.source for p in parts), stored_claims=stored, loss_name=parts[0].loss_name)


def claims_from(args, stored: list, source: str) -> tuple[schema.ClaimFamilies, str]:
    """The claims' families: the command line over what the studies store over the defaults; and whence."""
    base = claims_of(stored, source) if args.equivariant is None or args.baselines is None else schema.ClaimFamilies()
    if args.equivariant is None and args.baselines is None and args.augmented is None:
        return base, "the studies' stored `claims`" if stored else "the defaults (the flagship study's)"
    baselines = base.baselines
    if args.baselines is not None:
        baselines = tuple(b.strip() for b in args.baselines.split(",") if b.strip())
        if not baselines:
            raise ConfigError("--baselines is empty")
    equivariant = args.equivariant or base.equivariant
    if equivariant in baselines:
        raise ConfigError(f"--equivariant {equivariant} is also among the baselines")
    augmented = base.augmented if base.augmented in baselines else None
    if args.augmented is not None:
        augmented = None if args.augmented == "none" else args.augmented
        if augmented is not None and augmented not in baselines:
            raise ConfigError(f"--augmented {augmented} is not among the baselines ({', '.join(baselines)})")
    variants = {c.augmented: c.no_translation for c in stored if c.no_translation}   # the stored variant of each
    no_translation = variants.get(augmented) if augmented is not None else None       # augmented family, kept
    return schema.ClaimFamilies(equivariant, baselines, augmented, no_translation), "the command line"


def main(args) -> int:
    urls = args.storage or [DEFAULT_STORAGE]
    twice = next((u for i, u in enumerate(urls) if u in urls[:i]), None)
    if twice:
        raise ConfigError(f"--storage {twice} given twice")
    if args.bootstrap < 0:
        raise ConfigError(f"--bootstrap must be ≥ 0, got {args.bootstrap}")
    if not 0 < args.level < 1:
        raise ConfigError(f"--level must be between 0 and 1, got {args.level}")
    if args.isoflop_robust is not None and not args.isoflop_robust > 0:
        raise ConfigError(f"--isoflop-robust must be a positive fraction of the lowest loss, got {args.isoflop_robust}")
    budgets = parse_budgets(args.budgets) if args.budgets is not None else None
    check_output_dir(args.out)
    runs, data_runs = _load(urls, args.loss)
    # Claims 2 and 3 compare the compute studies' families, claim 1 the data studies' (each as its studies
    # store it): the two kinds may train different networks, e.g. the 2-head families against a fixed shape.
    source = ", ".join(urls)
    claims, whence = claims_from(args, (runs if runs is not None else data_runs).stored_claims, source)
    data_claims = claims_from(args, data_runs.stored_claims, source)[0] if data_runs is not None else claims
    fit, others = None, {}
    if runs is not None:
        fit = fit_study(runs, n_boot=args.bootstrap, seed=args.seed, level=args.level, axis=args.compute,
                        require_fit=False, robust=args.isoflop_robust)
        for axis in X.AXES:   # the same runs on every other axis, Approach 3's L(N, D) fits taken over
            if axis != args.compute:
                try:
                    others[axis] = fit_study(runs, n_boot=args.bootstrap, seed=args.seed, level=args.level,
                                             axis=axis, reuse=fit, require_fit=False, robust=args.isoflop_robust)
                except EquiscaleError as exc:   # e.g. no run stores its seconds: the section says so
                    print(f"compute axis {axis} left out: {exc}", file=sys.stderr)
    ratio_pairs, gap_pairs = data_pairs(data_claims)
    data = (analyse(data_runs, ratio_pairs=ratio_pairs, gap_pairs=gap_pairs, n_boot=args.bootstrap, seed=args.seed,
                    level=args.level) if data_runs is not None else None)
    label = f"{'validation' if args.loss == schema.VAL_LOSS else 'test'} loss [MSE, m²]"
    report = build_report(compute=fit, data=data, sources=urls, budgets=budgets, n_boot=args.bootstrap,
                          seed=args.seed, level=args.level, loss_label=label, claims=claims, claims_source=whence,
                          data_claims=data_claims, other_axes=others)
    for path in write_files(args.out, report.files()):
        print(path)
    for v in report.verdicts.values():
        axes = "; ".join(f"{a}: {d[v.claim].status}" for a, d in report.axes.items()) if v.claim in (2, 3) else ""
        print(f"claim {v.claim}: {v.status}" + (f" ({axes})" if axes and len(report.axes) > 1 else ""))
    return 0
