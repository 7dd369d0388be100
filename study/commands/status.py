"""`equiscale status`: one row per study: trials COMPLETE/target, failed, best val loss and its shape."""

from __future__ import annotations

import math

from study.config import DEFAULT_STORAGE


def add_arguments(parser) -> None:
    parser.add_argument("--storage", default=DEFAULT_STORAGE, help=f"Optuna storage URL (default {DEFAULT_STORAGE})")


def main(args) -> int:
    from study.resume import check_storage, open_storage

    check_storage(args.storage, must_exist=True)
    print(status_table(open_storage(args.storage)))
    return 0


def study_rows(storage) -> list[dict]:
    """Per study: name, complete, target, failed, running, best value and the best trial's shape."""
    import optuna
    from optuna.trial import TrialState

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    rows = []
    for summary in sorted(optuna.get_all_study_summaries(storage, include_best_trial=False),
                          key=lambda s: (s.user_attrs.get("family", s.study_name), s.user_attrs.get("budget", 0))):
        trials = optuna.load_study(study_name=summary.study_name, storage=storage).get_trials(deepcopy=False)
        complete = [t for t in trials if t.state == TrialState.COMPLETE]
        best = min(complete, key=lambda t: t.value, default=None)
        rows.append({
            "study": summary.study_name,
            "complete": len(complete),
            "target": summary.user_attrs.get("target_trials"),
            "failed": sum(t.state == TrialState.FAIL for t in trials),
            "running": sum(t.state == TrialState.RUNNING for t in trials),
            "best": best.value if best else math.nan,
            "shape": best.user_attrs.get("shape") if best else None,
            "params": best.user_attrs.get("params") if best else None,
        })
    return rows


def status_table(storage) -> str:
    """The rows of `study_rows` as an aligned text table."""
    rows = study_rows(storage)
    if not rows:
        return "no studies in this storage"
    header = ("study", "trials", "failed", "running", "best val loss", "best shape")
    lines = [header]
    for r in rows:
        shape = " ".join(f"{k}={v}" for k, v in (r["shape"] or {}).items())
        if r["params"]:
            shape += f" (N={r['params']:,})"
        target = "?" if r["target"] is None else r["target"]
        best = "-" if math.isnan(r["best"]) else f"{r['best']:.4g}"
        lines.append((r["study"], f"{r['complete']}/{target}", str(r["failed"]), str(r["running"]), best, shape or "-"))
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(line, widths)).rstrip() for line in lines)
