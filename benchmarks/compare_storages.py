"""Trial-by-trial comparison of two storages: is every COMPLETE trial of A reproduced exactly in B?

    python benchmarks/compare_storages.py --storage sqlite:///docs/results/cpu/compute.db \
        --against sqlite:///docs/results/cpu-v5/compute.db --against sqlite:///docs/results/cpu-v5/gatr-long/compute.db \
        --against sqlite:///docs/results/cpu-v5/gatr-lr/compute.db

Matches trials by study name and parameters (a grid point); prints each trial of A that no storage in
`--against` has with the same trial number and the bit-identical loss, then the counts. Training is
deterministic given the seed, which the study name and trial number fix, so a rerun matches exactly.
"""

from __future__ import annotations

import argparse

import optuna
from optuna.trial import TrialState


def points(url: str) -> dict[tuple, tuple[int, float]]:
    """(study, sorted params) -> (trial number, loss) of every COMPLETE trial in the storage."""
    out = {}
    for summary in optuna.get_all_study_summaries(url):
        study = optuna.load_study(study_name=summary.study_name, storage=url)
        for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
            out[(summary.study_name, tuple(sorted(t.params.items())))] = (t.number, t.value)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--storage", required=True, help="the storage whose trials are checked")
    parser.add_argument("--against", required=True, action="append", help="a storage to find them in (repeatable)")
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    reference: dict = {}
    for url in args.against:
        reference.update(points(url))
    same = 0
    mine = points(args.storage)
    for key, value in sorted(mine.items()):
        if reference.get(key) == value:
            same += 1
        else:
            print(f"differs: {key[0]} {dict(key[1])}: {value} here, {reference.get(key)} there")
    print(f"{same} of {len(mine)} trials identical (same trial number and loss)")


if __name__ == "__main__":
    main()
