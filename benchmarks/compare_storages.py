"""Trial-by-trial comparison of two storages: is every COMPLETE trial of A reproduced exactly in B?

    python benchmarks/compare_storages.py --storage sqlite:///new.db --against sqlite:///old.db [--against ...]

Matches trials by study name and parameters (a grid point); prints each trial of A that no storage in
`--against` has with the same trial number and the bit-identical loss, then the counts. Training is
deterministic given the seed, which the study name and trial number fix, so a rerun matches exactly.
"""

from __future__ import annotations

import argparse

import optuna
from optuna.trial import TrialState

from analysis.trials import open_studies
from study.cli import run_script
from study.errors import EquiscaleError


def points(url: str) -> dict[tuple, tuple[int, float]]:
    """(study, sorted params) -> (trial number, loss) of every COMPLETE trial in the storage (opened read-only)."""
    storage, summaries = open_studies(url)
    out = {}
    for summary in summaries:
        study = optuna.load_study(study_name=summary.study_name, storage=storage)
        for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
            out[(summary.study_name, tuple(sorted(t.params.items())))] = (t.number, t.value)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--storage", required=True, help="the storage whose trials are checked")
    parser.add_argument("--against", required=True, action="append", help="a storage to find them in (repeatable)")
    args = parser.parse_args()
    reference: dict = {}
    try:
        for url in args.against:
            reference.update(points(url))
        mine = points(args.storage)
    except EquiscaleError as exc:   # a bad URL or a storage that does not exist: one line, status 2
        parser.exit(2, f"compare_storages: {exc}\n")
    same = 0
    for key, value in sorted(mine.items()):
        if reference.get(key) == value:
            same += 1
        else:
            print(f"differs: {key[0]} {dict(key[1])}: {value} here, {reference.get(key)} there")
    print(f"{same} of {len(mine)} trials identical (same trial number and loss)")


if __name__ == "__main__":
    raise SystemExit(run_script(main))
