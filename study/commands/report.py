"""`equiscale report`: one Markdown report (and an HTML page with the figures inline) of compute and data studies.

Writes into --out: report.md, report.html, figures/*.png and allocation.csv (with compute studies). The
report is built in memory and written all or nothing (`study.output.write_files`). The default bootstrap
(REPORT_BOOTSTRAP resamples) keeps `equiscale report` on the committed CPU study within seconds.
"""

from __future__ import annotations

import pandas as pd

from analysis.api import fit_study
from analysis.data_efficiency import NoDataStudies, analyse, combine, load_data_storage
from analysis.export import parse_budgets
from analysis.report import GAP_PAIRS, RATIO_PAIRS, build_report
from analysis.trials import OnlyDataStudies, Runs, load_storage, open_studies
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
    parser.add_argument("--loss", choices=("val_loss", "test_loss"), default="val_loss",
                        help="which stored loss to analyse (default val_loss)")
    parser.add_argument("--bootstrap", type=int, default=REPORT_BOOTSTRAP, metavar="N",
                        help=f"bootstrap resamples for every interval (default {REPORT_BOOTSTRAP})")
    parser.add_argument("--level", type=float, default=0.95, help="interval level (default 0.95)")
    parser.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")


def _load(urls: list[str], loss: str):
    """(compute Runs or None, data runs or None) from every storage; a storage with neither is an error."""
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
    excluded, batch = {}, {}
    for p in parts:
        batch.update(p.batch_sizes)
        for reason, count in p.excluded.items():
            excluded[reason] = excluded.get(reason, 0) + count
    return Runs(pd.concat([p.frame for p in parts], ignore_index=True), excluded, batch,
                source=", ".join(p.source for p in parts))


def main(args) -> int:
    urls = args.storage or [DEFAULT_STORAGE]
    twice = next((u for i, u in enumerate(urls) if u in urls[:i]), None)
    if twice:
        raise ConfigError(f"--storage {twice} given twice")
    if args.bootstrap < 0:
        raise ConfigError(f"--bootstrap must be ≥ 0, got {args.bootstrap}")
    if not 0 < args.level < 1:
        raise ConfigError(f"--level must be between 0 and 1, got {args.level}")
    budgets = parse_budgets(args.budgets) if args.budgets is not None else None
    check_output_dir(args.out)
    runs, data_runs = _load(urls, args.loss)
    fit = fit_study(runs, n_boot=args.bootstrap, seed=args.seed, level=args.level) if runs is not None else None
    data = (analyse(data_runs, ratio_pairs=RATIO_PAIRS, gap_pairs=GAP_PAIRS, n_boot=args.bootstrap, seed=args.seed, level=args.level)
            if data_runs is not None else None)
    label = f"{'validation' if args.loss == 'val_loss' else 'test'} loss [MSE, m²]"
    report = build_report(compute=fit, data=data, sources=urls, budgets=budgets, n_boot=args.bootstrap,
                          seed=args.seed, level=args.level, loss_label=label)
    for path in write_files(args.out, report.files()):
        print(path)
    for v in report.verdicts.values():
        print(f"claim {v.claim}: {v.status}")
    return 0
