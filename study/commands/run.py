"""`equiscale run`: resume or start the budget-constrained studies (the embedded default without CONFIG)."""

from __future__ import annotations

import sys


def add_arguments(parser) -> None:
    parser.add_argument("config", nargs="?", help="study TOML (default: the embedded default study)")
    parser.add_argument("--family", action="append", dest="families", metavar="F", help="family (repeatable)")
    parser.add_argument("--budget", action="append", dest="budgets", type=_float, metavar="C",
                        help="training-FLOP budget (repeatable)")
    parser.add_argument("--trials", type=int, help="COMPLETE trials wanted per study")
    parser.add_argument("--storage", help="Optuna storage URL (default sqlite:///equiscale.db)")
    parser.add_argument("--address", help="address of an existing Ray cluster (default: start a local one)")
    parser.add_argument("--cpus-per-trial", type=_float, metavar="X")
    parser.add_argument("--gpus-per-trial", type=_float, metavar="X", help="fractions allowed (e.g. 0.25)")
    parser.add_argument("--quiet", action="store_true", help="no progress lines")


def _float(text: str) -> float:
    import argparse

    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None


def main(args) -> int:
    from study.config import load_config, with_overrides
    from study.resume import check_storage
    from study.tune import check_address

    # Everything that can be checked is checked before Ray starts or anything is written.
    config = with_overrides(
        load_config(args.config), families=args.families, budgets=args.budgets, trials=args.trials,
        storage=args.storage, address=args.address, cpus_per_trial=args.cpus_per_trial,
        gpus_per_trial=args.gpus_per_trial,
    )
    check_storage(config.storage)
    check_address(config.resources.address)

    from study.benchmark import load_dataset
    from study.commands.status import status_table
    from study.progress import Progress
    from study.resume import open_storage, prepare_studies
    from study.tune import run_studies, start_ray

    progress = Progress(enabled=not args.quiet)
    d = config.data
    progress.message(f"dataset: {d.scenes} scenes of {d.bodies} bodies (seed {d.seed})")
    dataset = load_dataset(scenes=d.scenes, bodies=d.bodies, seed=d.seed, cache_dir=None, progress=False)
    storage = open_storage(config.storage)
    states = prepare_studies(storage, config, dataset.key)
    todo = sum(s.remaining for s in states)
    progress.message(f"{len(states)} studies, {todo} trial(s) to run -> {config.storage}")
    if todo:
        import ray

        start_ray(config.resources.address)
        try:
            states = run_studies(config, storage=storage, states=states, dataset=dataset, progress=progress)
        finally:
            ray.shutdown()
    print(status_table(storage))
    short = [s.name for s in states if s.remaining]
    if short:
        print(f"equiscale run: {len(short)} stud{'y' if len(short) == 1 else 'ies'} short of the target "
              f"(failed trials; run again to retry): {', '.join(short)}", file=sys.stderr)
        return 1
    return 0
