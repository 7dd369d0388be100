"""The typed records that cross the Ray boundary: a trial plan goes to the worker, a train result comes back.

Both are plain frozen dataclasses (picklable, no Optuna or Ray types) so that the worker needs nothing
but the plan and the dataset, and the driver reads results by attribute, never by string key.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class TrialPlan:
    """Everything one training run needs besides the dataset: what to train, how long, with which settings."""

    family: str
    budget: float                   # the study's training-FLOP budget C
    shape: dict                     # shape kwargs of `build_model(family, **shape)`
    lr: float                       # peak learning rate
    steps: int
    batch_size: int
    step_flops: float               # training FLOPs of one step as executed (forward + backward): the budget unit
    forward_flops: float            # forward FLOPs of one sample (nominal count = 3 x forward x samples)
    params: int                     # trainable parameters N
    seed: int                       # initialisation and minibatch order
    weight_decay: float = 0.01
    warmup_fraction: float = 0.05
    grad_clip: float = 1.0
    evals: int = 5                  # periodic validations (learning-curve points)
    val_samples: int = 512          # val scenes per periodic validation (0 = all)
    threads: int = 1
    device: str = "cpu"
    checkpoint_seconds: float = math.inf    # wall time between checkpoints (inf: none); a run shorter saves none
    time_cap_seconds: float = math.inf      # training seconds after which the run stops and its trial FAILs (inf: none)
    train_size: int = 0             # train on the first `train_size` scenes of the training split (0: all)
    eval_at: tuple[int, ...] = ()   # steps after which to validate (empty: `evals` evenly spaced)
    model: Any = None               # the study.plugins.Family object (None: the installed family `family`)
    task: Any = None                # the study.plugins.Task object (None: the built-in rigid-body task)
    sample: tuple = ()              # the task's sample dimensions as sorted (name, value) pairs (building)
    compile: bool = False           # train through torch.compile(model) (validation stays eager)

    def curve_step(self, step: int) -> int:
        """Where a validation after `step` goes on the learning curve: the step, or with `train_size` the
        whole epochs done (data studies record their curves per epoch)."""
        return step * self.batch_size // self.train_size if self.train_size else step

    @property
    def samples(self) -> int:
        """D: samples seen over the run."""
        return self.steps * self.batch_size

    @property
    def flops(self) -> float:
        """Training FLOPs of the whole run (the budget actually used)."""
        return self.step_flops * self.steps


@dataclass(frozen=True)
class TrainResult:
    """What a finished run reports back: final losses, timing, equivariance error, the learning curve."""

    val_loss: float
    test_loss: float
    train_loss: float
    equivariance_error: float
    params: int                     # counted on the built module
    steps: int
    samples: int
    epochs: float                   # samples / training-set size
    train_seconds: float
    wall_seconds: float
    curve: tuple[tuple[int, float], ...] = field(default_factory=tuple)   # (step, val loss)
    node: str = ""
    resumed_from: int = 0           # the step this attempt continued from (0: from the start)
