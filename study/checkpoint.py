"""A trial's training state as a Ray Tune checkpoint: saved by `train`'s callback, loaded by a retried trial."""

from __future__ import annotations

import math
import sys
import tempfile

from study.schema import VAL_LOSS as METRIC  # the metric Tune reports (the trial's objective)
CHECKPOINT_FILE = "state.pt"    # the training state (`study.training`) inside a Tune checkpoint directory


class CheckpointSaver:
    """`train`'s checkpoint callback: the state saved with `torch.save` into a Tune checkpoint.

    Its report is no learning-curve point: `"result": None` makes the searchers skip it (they record
    only reports without a "result" key), and its metric is the last validation loss (NaN before one).
    When the checkpoint cannot be stored (a Tune storage path that this node cannot reach: a local path
    on a multi-node cluster), the trial goes on without checkpoints rather than failing.
    """

    def __init__(self):
        self.enabled = True

    def __call__(self, state: dict) -> None:
        import torch
        from ray import tune

        if not self.enabled:
            return
        with tempfile.TemporaryDirectory(prefix="equiscale-checkpoint-") as directory:
            torch.save(state, f"{directory}/{CHECKPOINT_FILE}")
            try:
                tune.report(checkpoint_metrics(state), checkpoint=tune.Checkpoint.from_directory(directory))
            except (RuntimeError, OSError) as exc:  # raised before anything is reported
                self.enabled = False
                print(f"equiscale: checkpoints disabled for this trial: {exc}", file=sys.stderr, flush=True)


def checkpoint_metrics(state: dict) -> dict:
    """The metrics reported with a checkpoint (see `CheckpointSaver`)."""
    curve = state["curve"]
    return {METRIC: float(curve[-1][1]) if curve else math.nan, "step": int(state["step"]),
            "checkpoint_step": int(state["step"]), "result": None}


def load_checkpoint(checkpoint) -> dict | None:
    """The training state in a Tune checkpoint saved by `CheckpointSaver` (None: no checkpoint, start afresh)."""
    import torch

    if checkpoint is None:
        return None
    with checkpoint.as_directory() as directory:
        return torch.load(f"{directory}/{CHECKPOINT_FILE}", map_location="cpu", weights_only=True)
