"""The GPU check: one command that says whether equiscale trains well and correctly on this machine's GPU.

    python benchmarks/gpu_check.py [--out DIR]          # on a CUDA machine, after the README's install commands
    python benchmarks/gpu_check.py --dry-run --out DIR  # the same steps on the CPU at tiny sizes (no GPU needed)

1. Peak: the best bf16 (8192 × 8192) matmul rate of the card, measured now.
2. Throughput: `study.training.train` (bf16 autocast, as every CUDA trial runs) at the smallest, middle and
   largest IsoFLOP grid points of each family of `studies/gpu.toml`, timed between two validation reports
   (start-up and final evaluation left out), as a fraction of that peak; at each family's largest shape, the
   share of GPU time in matmul kernels (torch.profiler over a few steps): the reason a shape stays below peak.
3. A grid study of 2 budgets × 3 families × 4 trials at `gpus_per_trial = 0.25` (four trials share the card)
   through `study.pipeline.run_study` into `DIR/study.db` (SQLite), on gpu.toml's families, batch and lr ranges,
   with budgets and a step range small enough for minutes (1e13 and 1e14 FLOPs, 100-1,000 steps).
4. Checked from the storage: every study holds 4 COMPLETE trials and nothing else; every trial's `flops_used`
   lies within 1% of its budget; the device: a stored `device` trial attribute where the storage has one (it
   has none today: `study.schema` stores no device), else the plans' device (`study.tune.plan_defaults`: cuda
   when gpus_per_trial > 0) and evidence that the Ray workers used the card while the study ran (GPU processes
   besides this one in `nvidia-smi`, or the card's used memory rising by more than 256 MiB).
5. Peak GPU memory per trial (`torch.cuda.max_memory_allocated`): trials run in Ray workers, so each stored
   trial's plan (shape, batch, lr) is trained again here for 10 steps plus its final evaluation.
6. `DIR/gpu_check.json` (every number), `DIR/report.md` (the tables) and one summary line, also printed.

Default DIR: docs/results/gpu/<card name>/. Exit 0 when every check passes, 1 when one fails, 2 when no CUDA
device is available (without --dry-run) or DIR already holds a study. Sized for at most 8 minutes on one H100.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from study.cli import run_script

GPU_BUDGETS = (1e13, 1e14)
GPU_STEPS = (100, 1000)
TRIALS = 4
FLOPS_TOLERANCE = 0.01
MATMUL_KERNELS = re.compile(r"gemm|matmul|cutlass|xmma|nvjet|cublas|aten::(mm|bmm|addmm|baddbmm)$", re.I)
ATTENTION_KERNELS = re.compile(r"flash|fmha|attention|efficient_attention", re.I)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=None, help="output directory (default docs/results/gpu/<card name>/)")
    parser.add_argument("--dry-run", action="store_true", help="CPU, tiny shapes and study: checks the script itself")
    parser.add_argument("--config", default="studies/gpu.toml", help="where the shapes, families, batch come from")
    parser.add_argument("--cache-dir", default=None, help="dataset cache (default: a temporary directory)")
    parser.add_argument("--seconds", type=float, default=2.0, help="timed seconds per throughput shape (about)")
    parser.add_argument("--compile", action="store_true",
                        help="also time each family's largest shape through torch.compile ([resources] compile; "
                             "each compile adds minutes; a dry run compiles with the aot_eager backend)")
    args = parser.parse_args(argv)

    import torch

    if not args.dry_run and not torch.cuda.is_available():
        print("gpu_check: no CUDA device is available (torch.cuda.is_available() is False); run it on a GPU "
              "machine, or add --dry-run to exercise it on the CPU", file=sys.stderr)
        return 2
    device = "cpu" if args.dry_run else "cuda"
    card = "cpu (dry run)" if args.dry_run else torch.cuda.get_device_name(0)
    out = Path(args.out) if args.out else Path("docs/results/gpu") / _slug(card)
    if (out / "study.db").exists():
        print(f"gpu_check: {out}/study.db exists (an earlier check); give another --out", file=sys.stderr)
        return 2
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    phases: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="equiscale-gpu-check-") as scratch:
        cache = args.cache_dir or scratch
        results = {"card": card, "device": device, "environment": _environment(torch)}

        t = time.perf_counter()
        peak = matmul_peak(torch, device)
        results["peak_flops"] = peak
        print(f"gpu_check: {card}: {'bf16' if device == 'cuda' else 'float32'} matmul peak "
              f"{_flops(peak)}", flush=True)
        results["throughput"] = throughput(torch, args.config, device, peak, args.seconds, args.dry_run,
                                           compile=args.compile)
        results["breakdown"] = breakdown(torch, args.config, device, args.dry_run)
        phases["throughput"] = time.perf_counter() - t

        t = time.perf_counter()
        config = study_config(args.config, device, out / "study.db", args.dry_run)
        results["study"] = run_grid_study(torch, config, cache)
        phases["study"] = time.perf_counter() - t

        t = time.perf_counter()
        results["storage"] = check_storage(config, results["study"])
        phases["storage check"] = time.perf_counter() - t

        t = time.perf_counter()
        results["memory"] = memory_pass(torch, config, cache, device)
        phases["memory"] = time.perf_counter() - t
    phases["total"] = time.perf_counter() - started
    results["phases_seconds"] = phases
    results["summary"] = summary(results)
    results["passed"] = results["storage"]["passed"]
    (out / "gpu_check.json").write_text(json.dumps(results, indent=2, default=str) + "\n")
    (out / "report.md").write_text(report(results))
    print(results["summary"], flush=True)
    return 0 if results["passed"] else 1


# ---------------------------------------------------------------------------------------------- measurements

def matmul_peak(torch, device: str) -> float:
    """Best FLOP/s of a square matmul: bf16 8192² on CUDA, float32 512² on the CPU (dry run)."""
    size, dtype = (8192, torch.bfloat16) if device == "cuda" else (512, torch.float32)
    a = torch.randn(size, size, device=device, dtype=dtype)
    b = torch.randn(size, size, device=device, dtype=dtype)
    best = math.inf
    for _ in range(20 if device == "cuda" else 5):
        _sync(torch, device)
        start = time.perf_counter()
        a @ b
        _sync(torch, device)
        best = min(best, time.perf_counter() - start)
    return 2 * size**3 / best


def shapes_of(config_path: str, dry_run: bool) -> list[tuple[str, str, object, object]]:
    """(family, size name, proposal, spec): the smallest, middle and largest grid point of each family."""
    from optuna.trial import FixedTrial

    from study.config import load_config, study_spec

    config = tiny_config() if dry_run else load_config(config_path)
    out = []
    for family in config.families:
        points = []
        for budget in config.budgets:
            spec = study_spec(config, family, budget)
            grid = spec.space.grid(spec, config.trials)
            for fwd in grid["fwd_flops"]:
                trial = FixedTrial({"depth": grid["depth"][0], "fwd_flops": fwd, "lr": grid["lr"][0]})
                proposal = spec.space(trial, spec)
                points.append((proposal.step_flops / proposal.batch_size, proposal.batch_size, proposal, spec))
        points.sort(key=lambda p: p[:2])
        for name, point in (("smallest", points[0]), ("middle", points[len(points) // 2]), ("largest", points[-1])):
            out.append((family, name, point[2], point[3]))
    return out


def _plan(proposal, spec, *, device: str, steps: int, warmup: int, compile: bool = False):
    from study.records import TrialPlan

    return TrialPlan(family=spec.family_name, budget=float(spec.budget), shape=dict(proposal.shape), lr=proposal.lr,
                     steps=steps, batch_size=proposal.batch_size, step_flops=proposal.step_flops,
                     forward_flops=proposal.forward_flops, params=proposal.params, seed=0, evals=2, val_samples=16,
                     threads=2 if device == "cuda" else 1, device=device, eval_at=(warmup, steps),
                     model=spec.family, task=spec.task, sample=tuple(sorted(spec.sample.items())), compile=compile)


def random_dataset(torch, sample: dict, scenes: int):
    from study.benchmark.format import Dataset, Split

    g = torch.Generator().manual_seed(0)
    k, m, p = sample["bodies"], sample["markers"], sample["props"]

    def split(n):
        return Split(torch.randn(n, k, m, 3, generator=g), torch.randn(n, k, m, 3, generator=g),
                     torch.rand(n, k, p, generator=g), torch.randn(n, k, m, 3, generator=g))

    return Dataset(train=split(scenes), val=split(64), test=split(64), key="random")


def throughput(torch, config_path: str, device: str, peak: float, seconds: float, dry_run: bool, *,
               compile: bool = False) -> list[dict]:
    """Training samples/s and FLOP/s ÷ peak per family and shape (train() under bf16 autocast on CUDA); with
    `compile`, each family's largest shape once more through torch.compile (its warm-up steps hold the compile)."""
    from study.training import train

    rows = []
    warmup = 2 if dry_run else 5
    variants = [(family, size, proposal, spec, compiled)
                for family, size, proposal, spec in shapes_of(config_path, dry_run)
                for compiled in ((False, True) if compile and size == "largest" else (False,))]
    for family, size, proposal, spec, compiled in variants:
        row = {"family": family, "size": size, "shape": dict(proposal.shape), "batch": proposal.batch_size,
               "step_flops": proposal.step_flops, "compiled": compiled}
        # timed steps from a guess of 30% of peak, within 3..100 (small shapes are launch-bound: the cap holds)
        timed = int(min(100, max(3, seconds * 0.3 * peak / proposal.step_flops))) if not dry_run else 3
        plan = _plan(proposal, spec, device=device, steps=warmup + timed, warmup=warmup, compile=compiled)
        dataset = random_dataset(torch, dict(spec.sample), max(1024, 4 * proposal.batch_size))
        marks = {}
        try:
            _reset_memory(torch, device)
            with _dry_compile(torch, dry_run and compiled):
                train(plan, dataset, report=lambda step, val: marks.setdefault(step, time.perf_counter()))
            step_seconds = (marks[plan.steps] - marks[warmup]) / timed
            row.update(steps=timed, step_seconds=step_seconds, samples_per_s=proposal.batch_size / step_seconds,
                       flops_per_s=proposal.step_flops / step_seconds,
                       of_peak=proposal.step_flops / step_seconds / peak, peak_memory=_peak_memory(torch, device))
        except Exception as exc:   # out of memory at the largest shapes: recorded, the check goes on
            row["error"] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:160]}"
            _free(torch, device)
        rows.append(row)
        print("gpu_check: throughput " + _throughput_line(row), flush=True)
    return rows


@contextlib.contextmanager
def _dry_compile(torch, on: bool):
    """A dry run's torch.compile: the aot_eager backend (graph capture and AOT autograd, no CPU code generation,
    seconds instead of minutes), so that the compiled path is exercised where no GPU is."""
    if not on:
        yield
        return
    real = torch.compile
    torch.compile = lambda model, **kwargs: real(model, backend="aot_eager")
    try:
        yield
    finally:
        torch.compile = real


def breakdown(torch, config_path: str, device: str, dry_run: bool) -> list[dict]:
    """At each family's largest shape: the share of device time (CPU time in a dry run) spent in matmul kernels
    over a few profiled training steps, and the five most expensive kernels."""
    from torch.profiler import ProfilerActivity, profile

    from study.training import train

    rows = []
    for family, size, proposal, spec in shapes_of(config_path, dry_run):
        if size != "largest":
            continue
        plan = _plan(proposal, spec, device=device, steps=5, warmup=2)
        dataset = random_dataset(torch, dict(spec.sample), max(1024, 4 * proposal.batch_size))
        activities = [ProfilerActivity.CUDA] if device == "cuda" else [ProfilerActivity.CPU]
        try:
            with profile(activities=activities) as prof:
                train(plan, dataset)
        except Exception as exc:
            rows.append({"family": family, "shape": dict(proposal.shape),
                         "error": f"{type(exc).__name__}: {exc}"[:200]})
            _free(torch, device)
            continue
        events = [e for e in prof.key_averages() if _self_time(e, device) > 0]
        if device == "cpu":   # CPU: operators, not kernels; leave out the enclosing autograd/profiler records
            events = [e for e in events if e.key.startswith("aten::")]
        total = sum(_self_time(e, device) for e in events) or 1.0
        matmul = sum(_self_time(e, device) for e in events if MATMUL_KERNELS.search(e.key))
        attention = sum(_self_time(e, device) for e in events
                        if ATTENTION_KERNELS.search(e.key) and not MATMUL_KERNELS.search(e.key))
        top = sorted(events, key=lambda e: -_self_time(e, device))[:5]
        rows.append({"family": family, "shape": dict(proposal.shape), "matmul_share": matmul / total,
                     "attention_share": attention / total,
                     "top": [[e.key[:80], _self_time(e, device) / total] for e in top]})
        print(f"gpu_check: {family} {_shape(proposal.shape)}: {matmul / total:.0%} of "
              f"{'GPU' if device == 'cuda' else 'CPU'} time in matmul kernels, {attention / total:.0%} in attention",
              flush=True)
    return rows


def _self_time(event, device: str) -> float:
    if device == "cuda":
        return float(getattr(event, "self_device_time_total", 0.0) or getattr(event, "self_cuda_time_total", 0.0))
    return float(event.self_cpu_time_total)


# ---------------------------------------------------------------------------------------------- the study

def tiny_config(storage: str = "sqlite:///:memory:"):
    """The dry run's study: 3 families × 2 budgets × 4 trials of tiny shapes on 200 scenes, on the CPU (budgets and
    steps where every family's grid has 4 sizes)."""
    from study.config import DataConfig, ResourceConfig, StudyConfig, TrainingConfig, validate

    config = StudyConfig(
        families=("transformer", "transformer-aug", "gatr"), budgets=(4e9, 8e9), trials=TRIALS, storage=storage,
        seed=0, sampler="grid", data=DataConfig(scenes=200, bodies=3, seed=0),
        training=TrainingConfig(batch_size=8, min_steps=100, max_steps=400, evals=2, val_samples=64, grid_depth=1,
                                lr_ranges=(("transformer", 1e-3, 4e-3), ("transformer-aug", 1e-3, 4e-3),
                                           ("gatr", 2e-3, 8e-3))),
        resources=ResourceConfig(cpus_per_trial=1, max_concurrent=2, max_failures=1))
    validate(config)
    return config


def study_config(config_path: str, device: str, storage: Path, dry_run: bool):
    """The check's grid study: gpu.toml's families, batch and lr ranges at small budgets, 4 trials per GPU."""
    from study.config import load_config, validate

    url = f"sqlite:///{storage.resolve()}"
    if dry_run:
        return tiny_config(url)
    config = load_config(config_path)
    training = dataclasses.replace(config.training, batch_size=config.training.batch_size, batch_sizes=(),
                                   aligned_budgets=(), budget_step_ranges=(), step_ranges=(),
                                   min_steps=GPU_STEPS[0], max_steps=GPU_STEPS[1], evals=2, val_samples=1024)
    config = dataclasses.replace(
        config, budgets=GPU_BUDGETS, trials=TRIALS, sampler="grid", storage=url, training=training,
        data=dataclasses.replace(config.data, scenes=65536, val_fraction=0.02, test_fraction=0.02),
        resources=dataclasses.replace(config.resources, gpus_per_trial=0.25, cpus_per_trial=2, max_concurrent=0,
                                      max_failures=1))
    validate(config)
    return config


def run_grid_study(torch, config, cache: str) -> dict:
    """`run_study` on the check's config, with the GPU processes seen meanwhile (nvidia-smi, every second)."""
    from study.pipeline import run_study
    from study.progress import Progress

    _free(torch, "cuda" if torch.cuda.is_available() else "cpu")
    watcher = GpuWatcher(torch)
    watcher.start()
    start = time.perf_counter()
    try:
        summary = run_study(config, progress=Progress(enabled=True, bar=False), cache_dir=cache)
    finally:
        watcher.stop()
    return {"seconds": time.perf_counter() - start, "storage": config.storage, "summary": str(summary),
            "gpu_processes": watcher.seen, "nvidia_smi": watcher.available,
            "gpu_memory_rise_mib": watcher.extra_mib}


class GpuWatcher:
    """While the study runs, once a second: the compute processes nvidia-smi lists (pid -> most MiB seen; inside a
    container it may list none) and the card's used memory (`torch.cuda.mem_get_info`, device-wide: it rises when
    Ray workers train on the card) above what it was at the start."""

    def __init__(self, torch, interval: float = 1.0):
        self.torch, self.interval, self.seen = torch, interval, {}
        self.available = shutil.which("nvidia-smi") is not None
        self.cuda = torch.cuda.is_available()
        self.baseline = self._used() if self.cuda else 0
        self.extra_mib = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _used(self) -> int:
        free, total = self.torch.cuda.mem_get_info()
        return total - free

    def start(self) -> None:
        if self.available or self.cuda:
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.is_set():
            if self.cuda:
                self.extra_mib = max(self.extra_mib, (self._used() - self.baseline) / 2**20)
            if not self.available:
                self._stop.wait(self.interval)
                continue
            try:
                text = subprocess.run(["nvidia-smi", "--query-compute-apps=pid,used_memory",
                                       "--format=csv,noheader,nounits"], capture_output=True, text=True,
                                      timeout=10).stdout
            except (OSError, subprocess.SubprocessError):
                text = ""
            for line in text.splitlines():
                parts = [p.strip() for p in line.split(",")]
                if len(parts) == 2 and parts[0].isdigit():
                    pid, mib = int(parts[0]), float(parts[1]) if parts[1].replace(".", "").isdigit() else 0.0
                    if pid != os.getpid():
                        self.seen[pid] = max(self.seen.get(pid, 0.0), mib)
            self._stop.wait(self.interval)


def check_storage(config, study: dict) -> dict:
    """Every study: TRIALS COMPLETE trials and no other; flops_used within 1% of the budget; the device."""
    import optuna
    from optuna.trial import TrialState

    from study import schema
    from study.config import resolve
    from study.tune import plan_defaults

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    problems, trials, devices = [], [], set()
    run = resolve(config)
    planned_device = {plan_defaults(spec, config.resources).device for spec in run.studies}
    names = {spec.name for spec in run.studies}
    stored = {s.study_name for s in optuna.get_all_study_summaries(config.storage, include_best_trial=False)}
    if stored != names:
        problems.append(f"studies stored {sorted(stored)}, expected {sorted(names)}")
    for name in sorted(names & stored):
        st = optuna.load_study(study_name=name, storage=config.storage)
        attrs = schema.read_study_attrs(st.user_attrs)
        states = [t.state for t in st.trials]
        complete = [t for t in st.trials if t.state == TrialState.COMPLETE]
        if len(complete) != TRIALS or len(states) != TRIALS:
            problems.append(f"{name}: {len(complete)} COMPLETE of {len(states)} trials "
                            f"({', '.join(sorted({s.name for s in states}))}), expected {TRIALS} COMPLETE")
        for t in complete:
            record = schema.read_trial(t)
            ratio = (record.flops_used or 0.0) / attrs.budget
            device = t.user_attrs.get("device")
            if device is not None:
                devices.add(str(device))
            trials.append({"study": name, "number": t.number, "family": attrs.family, "budget": attrs.budget,
                           "batch": attrs.batch_size, "shape": record.shape, "lr": record.lr, "steps": record.steps,
                           "flops_used": record.flops_used, "flops_ratio": ratio, "val_loss": record.val_loss,
                           "wall_seconds": t.user_attrs.get(schema.WALL_SECONDS), "device": device})
            if not abs(ratio - 1) <= FLOPS_TOLERANCE:
                problems.append(f"{name} trial {t.number}: flops_used / budget = {ratio:.4f}")
    expected = "cpu" if config.resources.gpus_per_trial == 0 else "cuda"
    if devices:
        evidence = f"stored device attribute: {sorted(devices)}"
        device_ok = devices == {expected}
    else:
        workers, rise = study.get("gpu_processes", {}), float(study.get("gpu_memory_rise_mib", 0.0))
        if expected == "cuda":
            evidence = (f"no device attribute stored; during the study nvidia-smi saw {len(workers)} GPU "
                        f"process(es) besides this one and the card's used memory rose by {rise:.0f} MiB")
            device_ok = (bool(workers) or rise > 256) and planned_device == {"cuda"}
        else:
            evidence = "no device attribute stored; the plans' device is cpu (dry run)"
            device_ok = planned_device == {"cpu"}
        evidence += f"; plans' device {sorted(planned_device)}"
    if not device_ok:
        problems.append(f"device: expected {expected}; {evidence}")
    return {"passed": not problems, "problems": problems, "trials": trials, "device_evidence": evidence,
            "device_verdict": f"device {expected}" if device_ok else f"device {expected} not shown",
            "complete": sum(1 for t in trials), "expected": TRIALS * len(names)}


def memory_pass(torch, config, cache: str, device: str) -> list[dict]:
    """Each stored trial's plan trained here for 10 steps and its final evaluation: its peak GPU memory."""
    import optuna

    from search_spaces.budget import proposal
    from study import schema
    from study.config import resolve
    from study.training import train
    from study.tune import plan_defaults

    run = resolve(config)
    dataset = run.task.load(run.task_settings, cache_dir=cache)
    rows = []
    for spec in run.studies:
        st = optuna.load_study(study_name=spec.name, storage=config.storage)
        defaults = plan_defaults(spec, config.resources)
        for t in st.trials:
            record = schema.read_trial(t)
            if record.shape is None:
                continue
            plan = dataclasses.replace(defaults.plan(proposal(spec, record.shape, lr=record.lr or 1e-3, steps=10),
                                                     seed=0), evals=1)
            row = {"study": spec.name, "number": t.number, "shape": record.shape, "batch": plan.batch_size,
                   "device": plan.device}
            try:
                _reset_memory(torch, device)
                train(plan, dataset)
                row["peak_memory"] = _peak_memory(torch, device)
            except Exception as exc:
                row["error"] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:160]}"
                _free(torch, device)
            rows.append(row)
    return rows


# ---------------------------------------------------------------------------------------------- output

def summary(results: dict) -> str:
    largest = {r["family"]: r for r in results["throughput"] if r["size"] == "largest" and not r.get("compiled")}
    compiled = {r["family"]: r for r in results["throughput"] if r.get("compiled")}
    at_largest = ", ".join(
        (f"{f} {r['of_peak']:.0%}" if "of_peak" in r else f"{f} {r.get('error', 'n/a')[:30]}")
        + (f" (compiled {compiled[f]['of_peak']:.0%})" if "of_peak" in compiled.get(f, {}) else "")
        for f, r in largest.items())
    storage = results["storage"]
    memory = [r["peak_memory"] for r in results["memory"] if r.get("peak_memory") is not None]
    mem = f"peak memory per trial {min(memory) / 2**30:.2f}-{max(memory) / 2**30:.2f} GiB" if memory else \
        "peak memory not measured (no CUDA)"
    verdict = "PASS" if storage["passed"] else "FAIL: " + "; ".join(storage["problems"][:3])
    return (f"gpu_check {results['card']}: {'bf16' if results['device'] == 'cuda' else 'float32'} peak "
            f"{_flops(results['peak_flops'])}; largest shapes at {at_largest} of peak; study "
            f"{storage['complete']}/{storage['expected']} COMPLETE, flops within 1%, "
            f"{storage['device_verdict']}; {mem}; {results['phases_seconds']['total'] / 60:.1f} min "
            f"- {verdict}")


def report(results: dict) -> str:
    env = results["environment"]
    lines = [f"# GPU check: {results['card']}", "", f"`python benchmarks/gpu_check.py` — {env}", "",
             f"Peak: {_flops(results['peak_flops'])} "
             f"({'bf16 8192² matmul' if results['device'] == 'cuda' else 'float32 512² matmul, dry run'}).", "",
             "## Training throughput (train(), bf16 autocast on CUDA)", "",
             "| family | size | shape | batch | ms/step | samples/s | of peak | peak memory |",
             "|---|---|---|---|---|---|---|---|"]
    for r in results["throughput"]:
        size = r["size"] + (", compiled" if r.get("compiled") else "")
        if "error" in r:
            lines.append(f"| {r['family']} | {size} | {_shape(r['shape'])} | {r['batch']} | {r['error']} | | | |")
            continue
        lines.append(f"| {r['family']} | {size} | {_shape(r['shape'])} | {r['batch']} | "
                     f"{r['step_seconds'] * 1e3:.1f} | {r['samples_per_s']:.0f} | {r['of_peak']:.1%} | "
                     f"{_gib(r.get('peak_memory'))} |")
    lines += ["", "## Where the time goes at the largest shapes (profiled steps)", ""]
    for r in results["breakdown"]:
        if "error" in r:
            lines.append(f"- {r['family']} {_shape(r['shape'])}: {r['error']}")
            continue
        top = "; ".join(f"{name} {share:.0%}" for name, share in r["top"])
        lines.append(f"- {r['family']} {_shape(r['shape'])}: {r['matmul_share']:.0%} in matmul kernels, "
                     f"{r['attention_share']:.0%} in attention kernels, the rest elementwise and other. Top: {top}")
    storage = results["storage"]
    lines += ["", f"## Grid study ({results['study']['seconds']:.0f} s) checked from {results['study']['storage']}", "",
              f"{storage['complete']}/{storage['expected']} COMPLETE; device: {storage['device_evidence']}; "
              f"{'all checks pass' if storage['passed'] else 'problems: ' + '; '.join(storage['problems'])}", "",
              "| study | trial | shape | steps | flops_used / budget | val loss | wall s |",
              "|---|---|---|---|---|---|---|"]
    for t in storage["trials"]:
        lines.append(f"| {t['study']} | {t['number']} | {_shape(t['shape'] or {})} | {t['steps']} | "
                     f"{t['flops_ratio']:.4f} | {t['val_loss']:.4g} | {float(t['wall_seconds'] or 0):.1f} |")
    lines += ["", "## Peak memory per trial (its plan trained here: 10 steps and its final evaluation)", "",
              "| study | trial | shape | batch | peak memory |", "|---|---|---|---|---|"]
    for r in results["memory"]:
        lines.append(f"| {r['study']} | {r['number']} | {_shape(r['shape'])} | {r['batch']} | "
                     f"{r.get('error') or _gib(r.get('peak_memory'))} |")
    phases = ", ".join(f"{k} {v:.0f} s" for k, v in results["phases_seconds"].items())
    lines += ["", f"Time: {phases}.", "", results["summary"], ""]
    return "\n".join(lines)


def _throughput_line(row: dict) -> str:
    head = (f"{row['family']} {row['size']}{' compiled' if row.get('compiled') else ''} {_shape(row['shape'])} "
            f"batch {row['batch']}: ")
    if "error" in row:
        return head + row["error"]
    return (head + f"{row['step_seconds'] * 1e3:.1f} ms/step, {row['samples_per_s']:.0f} samples/s, "
            f"{row['of_peak']:.1%} of peak, {_gib(row.get('peak_memory'))}")


def _environment(torch) -> str:
    parts = [f"torch {torch.__version__}", f"CUDA {torch.version.cuda}" if torch.version.cuda else "no CUDA build"]
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        parts.append(f"{props.name}, {props.total_memory / 2**30:.0f} GiB, capability {props.major}.{props.minor}")
    parts.append(f"{os.cpu_count()} CPUs")
    return ", ".join(parts)


def _flops(rate: float) -> str:
    return f"{rate / 1e12:.1f} TFLOP/s" if rate >= 1e12 else f"{rate / 1e9:.1f} GFLOP/s"


def _shape(shape: dict) -> str:
    return ",".join(f"{k}={v}" for k, v in shape.items())


def _gib(value) -> str:
    return "n/a" if value is None else f"{value / 2**30:.2f} GiB"


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def _sync(torch, device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def _reset_memory(torch, device: str) -> None:
    if device == "cuda":
        _free(torch, device)
        torch.cuda.reset_peak_memory_stats()


def _peak_memory(torch, device: str) -> int | None:
    return int(torch.cuda.max_memory_allocated()) if device == "cuda" else None


def _free(torch, device: str) -> None:
    if device == "cuda":
        import gc

        gc.collect()
        torch.cuda.empty_cache()


if __name__ == "__main__":
    raise SystemExit(run_script(main))
