"""The path of `equiscale run` through the package, module by module, measured with a profiler.

Runs a tiny study (one family, one budget, two trials) in this process through `study.cli.main` with
`sys.setprofile` recording every call from one of the project's modules into another, and one training run
(`study.training.train`, what a Ray worker does) the same way. Modules are listed in the order the run first
enters them by a call (module bodies run at import are left out); a call from a module into one that comes earlier
in that order is a return to a module the run already left (e.g. a lower layer calling back into the config). Prints the path, every such back edge with its count, and the
totals: compare two versions by running this script in each checkout on the same machine.

    python benchmarks/run_path.py [--keep DIR]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections import Counter
from pathlib import Path

from study.cli import run_script

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("study", "search_spaces", "analysis")
TOML = """
families = ["transformer"]
budgets = [1e9]
trials = 2
sampler = "grid"
[data]
scenes = 200
bodies = 3
[training]
batch_size = 16
min_steps = 100
max_steps = 300
evals = 2
val_samples = 32
lr_ranges = { transformer = [1e-3, 4e-3] }
[resources]
cpus_per_trial = 1
max_concurrent = 1
max_failures = 0
"""


def module_of(frame) -> str | None:
    """The project module a frame runs in (`study.tune`), or None for anything else."""
    path = frame.f_code.co_filename
    try:
        rel = Path(path).resolve().relative_to(ROOT)
    except ValueError:
        return None
    if rel.parts[0] not in PACKAGES or rel.suffix != ".py":
        return None
    parts = list(rel.with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def record(run) -> tuple[list[str], Counter]:
    """Run `run()` under the profiler: (modules in first-entry order, Counter of (caller, callee) calls)."""
    order: list[str] = []
    calls: Counter = Counter()

    def profile(frame, event, arg):
        if event != "call" or frame.f_code.co_name == "<module>":   # module bodies run on import: not the path
            return
        callee = module_of(frame)
        if callee is None:
            return
        if callee not in order:
            order.append(callee)
        caller_frame = frame.f_back
        while caller_frame is not None and (module_of(caller_frame) is None
                                            or caller_frame.f_code.co_name == "<module>"):
            caller_frame = caller_frame.f_back
        caller = module_of(caller_frame) if caller_frame is not None else None
        if caller is not None and caller != callee:
            calls[(caller, callee)] += 1

    sys.setprofile(profile)
    try:
        run()
    finally:
        sys.setprofile(None)
    return order, calls


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", help="folder for the study file, storage and cache (default: a temporary one)")
    args = parser.parse_args()
    work = Path(args.keep or tempfile.mkdtemp(prefix="equiscale-path-"))
    work.mkdir(parents=True, exist_ok=True)
    (work / "tiny.toml").write_text(TOML)
    os.environ["EQUISCALE_CACHE_DIR"] = str(work / "cache")
    sys.path.insert(0, str(ROOT))
    from study.cli import main as cli

    def run():
        cli(["run", str(work / "tiny.toml"), "--storage", f"sqlite:///{work / 'path.db'}", "--quiet"])

    order, calls = record(run)

    # one training run in this process: the worker's half of the path
    import optuna

    from study.benchmark import load_dataset
    study = optuna.load_study(study_name="transformer/1e+09", storage=f"sqlite:///{work / 'path.db'}")
    trial = study.trials[0]
    import study.training as training
    from study.records import TrialPlan
    plan = TrialPlan(family="transformer", budget=1e9, shape=trial.user_attrs["shape"], lr=trial.params["lr"],
                     steps=trial.user_attrs["steps"], batch_size=16, step_flops=1.0, forward_flops=1.0,
                     params=1, seed=1, evals=2, val_samples=32)
    dataset = load_dataset(scenes=200, bodies=3, seed=0, cache_dir=work / "cache")
    worker_order, worker_calls = record(lambda: training.train(plan, dataset))
    for module in worker_order:
        if module not in order:
            order.append(module)
    calls.update(worker_calls)

    rank = {m: i for i, m in enumerate(order)}
    back = {edge: n for edge, n in calls.items() if rank[edge[1]] < rank[edge[0]]}
    print("path (modules in the order the run first enters them):")
    for i, module in enumerate(order):
        print(f"  {i:2d} {module}")
    print("returns to a module already left (caller -> earlier module: calls):")
    for (caller, callee), n in sorted(back.items(), key=lambda kv: (rank[kv[0][0]], rank[kv[0][1]])):
        print(f"  {caller} -> {callee}: {n}")
    above = ("study.cli", "study.commands", "study.pipeline", "study.config")
    hub = {edge: n for edge, n in calls.items() if edge[1] == "study.config" and not edge[0].startswith(above)}
    print("calls into study.config from below it (not the CLI, a command or the pipeline):")
    for (caller, callee), n in sorted(hub.items()):
        print(f"  {caller} -> {callee}: {n}")
    print(f"modules {len(order)}; back edges {len(back)}; back calls {sum(back.values())}; "
          f"edges into the config from below {len(hub)}; calls {sum(hub.values())}")
    return 0


if __name__ == "__main__":
    raise SystemExit(run_script(main))
