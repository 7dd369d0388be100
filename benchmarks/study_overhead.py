"""Ray orchestration overhead: the same trials through Ray Tune and sequentially in this process.

Prints (wall time through Ray) / (ideal = sum of the sequential trials' seconds / concurrency), with and
without Ray's start-up. The trials are fixed in advance (random proposals of each study's space, one set
per (family, budget) of the default study) and enqueued into the Optuna studies, so Ray trains exactly them.

    python benchmarks/study_overhead.py [--trials-per-study 3] [--concurrency 2]
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
import time

from study.cli import run_script


def proposals(config, per_study: int, seed: int) -> dict[str, list[dict]]:
    """Seeded random parameters of each study's space (what the trials will be)."""
    import optuna

    from search_spaces import space_for
    from study.config import study_name

    plans = {}
    for family, budget in config.studies():
        study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
        params = []
        for _ in range(per_study):
            trial = study.ask()
            space_for(family)(trial, budget=budget, config=config)
            study.tell(trial, 0.0)
            params.append(dict(trial.params))
        plans[study_name(family, budget)] = params
    return plans


def run_sequential(config, plans, dataset) -> list[float]:
    """Train every planned trial here, one after another, with the per-trial thread allotment; wall seconds each."""
    import optuna

    from search_spaces import space_for
    from study.config import study_name
    from study.training import train
    from study.tune import plan_defaults, trial_seed

    seconds = []
    for spec in config.specs():
        family, budget, name = spec.family, spec.budget, spec.name
        defaults = plan_defaults(spec, config)
        for number, params in enumerate(plans[name]):
            proposal = space_for(family)(optuna.trial.FixedTrial(params), budget=budget, config=config)
            start = time.perf_counter()
            train(defaults.plan(proposal, seed=trial_seed(name, number, config.seed)), dataset)
            seconds.append(time.perf_counter() - start)
    return seconds


def run_through_ray(config, plans, dataset) -> tuple[float, float, list[float]]:
    """The same trials via `run_studies`: (ray.init seconds, Tune seconds, trials' own wall seconds)."""
    import optuna
    import ray

    from study.adapter import start_ray
    from study.progress import Progress
    from study.resume import prepare_studies
    from study.storage import open_storage
    from study.tune import run_studies

    storage = open_storage(config.storage)
    states = prepare_studies(storage, config, dataset.key)
    for name, params in plans.items():
        study = optuna.load_study(study_name=name, storage=storage)
        for p in params:
            study.enqueue_trial(p)
    start = time.perf_counter()
    start_ray(None)
    ready = time.perf_counter()
    try:
        states = run_studies(config, storage=storage, states=states, dataset=dataset, progress=Progress(enabled=False))
    finally:
        ray.shutdown()
    done = time.perf_counter()
    assert all(s.remaining == 0 for s in states), "some trials failed"
    walls = [t.user_attrs["wall_seconds"] for name in plans
             for t in optuna.load_study(study_name=name, storage=storage).get_trials(
                 states=(optuna.trial.TrialState.COMPLETE,))]
    return ready - start, done - ready, walls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials-per-study", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    import optuna

    from study.benchmark import load_dataset
    from study.config import load_config, with_overrides

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    with tempfile.TemporaryDirectory() as tmp:
        config = with_overrides(load_config(), trials=args.trials_per_study, storage=f"sqlite:///{tmp}/ray.db")
        config = dataclasses.replace(config, resources=dataclasses.replace(
            config.resources, max_concurrent=args.concurrency))
        d = config.data
        dataset = load_dataset(d.benchmark())
        plans = proposals(config, args.trials_per_study, args.seed)
        n = sum(len(p) for p in plans.values())
        print(f"{n} trials (default study's families x budgets, {args.trials_per_study} each), "
              f"{config.resources.cpus_per_trial:g} CPU per trial, concurrency {args.concurrency}", flush=True)
        sequential = run_sequential(config, plans, dataset)
        ideal = sum(sequential) / args.concurrency
        print(f"sequential in-process: {sum(sequential):.1f} s in all -> ideal wall {ideal:.1f} s", flush=True)
        init, tuned, walls = run_through_ray(config, plans, dataset)
    print(f"through Ray: ray.init {init:.1f} s + Tune {tuned:.1f} s (trials' own wall seconds sum {sum(walls):.1f})")
    print(f"overhead ratio (Tune wall / ideal):              {tuned / ideal:.3f}")
    print(f"overhead ratio incl. ray.init (total / ideal):   {(init + tuned) / ideal:.3f}")
    print(f"orchestration ratio (Tune wall / (sum of the trials' own seconds under Ray / concurrency)): "
          f"{tuned / (sum(walls) / args.concurrency):.3f}")
    print(f"trial slowdown under concurrency (sum Ray trial walls / sum sequential): {sum(walls) / sum(sequential):.3f}")


if __name__ == "__main__":
    raise SystemExit(run_script(main))
