"""Compute axes: what "compute" means when a run's cost is put on the x-axis of L(C) and the allocation laws.

- `executed` (the default): training FLOPs as executed, the budget each study spent (`flops_used`, DESIGN
  "Compute accounting");
- `nominal`: the stored `nominal_flops`, 3 × forward FLOPs × samples (the customary estimate);
- `idealised`: the executed count with GATr's equivariant linear maps and geometric-algebra bilinears counted
  by their nonzero terms (study/models/gatr/idealised_flops.py), computed from a trial's family, shape,
  samples and the study's bodies per scene; a family without an idealised count (the transformers) keeps
  its executed count;
- `seconds`: the trial's measured training seconds: `train_seconds` (the training loop with its periodic probe
  validation) where stored, else `wall_seconds` (trials stored before it, which add the final evaluation); the
  train-time frontier of Ngo & Ravanbakhsh 2025.

Under an axis other than executed, a run's compute on that axis is its x in L(C) and in the allocation laws
(Approach 3's cost model C = K·N^(1+κ)·D is fitted to it); runs stay grouped by the stored budget they were
trained at (the IsoFLOP groups and "best run per budget"), and a group's compute is that of its runs.
"""

from __future__ import annotations

import inspect
from typing import Callable

import numpy as np
import pandas as pd

from study.errors import ConfigError

AXES = ("executed", "nominal", "idealised", "seconds")
EXECUTED, NOMINAL, IDEALISED, SECONDS = AXES
COLUMN = {EXECUTED: "executed", NOMINAL: "nominal", IDEALISED: "idealised", SECONDS: "seconds"}  # Runs.frame
LABEL = {EXECUTED: "training compute C [FLOP, as executed]", NOMINAL: "nominal compute 3·forward·D [FLOP]",
         IDEALISED: "idealised compute [FLOP, nonzero terms]", SECONDS: "training time [s]"}
UNIT = {EXECUTED: "FLOP", NOMINAL: "FLOP", IDEALISED: "FLOP", SECONDS: "s"}
SHORT = {EXECUTED: "executed FLOPs", NOMINAL: "nominal FLOPs (3 × forward)",
         IDEALISED: "idealised FLOPs (equivariant maps and bilinears by their nonzeros)",
         SECONDS: "measured training seconds"}


def check_axis(axis: str) -> str:
    if axis not in AXES:
        raise ConfigError(f"--compute must be one of {', '.join(AXES)}, got {axis!r}")
    return axis


def budget_label(axis: str) -> str:
    """Column head of a budget on `axis`: 'budget C [FLOP]' or 'compute [s]'."""
    return "budget C [FLOP]" if axis == EXECUTED else f"compute [{UNIT[axis]}, {axis}]"


def idealised_counter(name: str) -> Callable[[dict, dict], int] | None:
    """(sample dims, shape) -> idealised training FLOPs per sample of the installed family `name`, or None when
    the family has no idealised count. A family object may define `idealised_training_flops(sample, shape)`; a
    family built from a module (the built-in ones) may define it in that module as keyword function."""
    from study.models.registry import get_family   # torch: only when the idealised axis is asked for

    family = get_family(name)
    method = getattr(family, "idealised_training_flops", None)
    if callable(method):
        return lambda sample, shape: int(method(sample, shape))
    module = inspect.getmodule(getattr(family, "forward_fn", None))
    fn = getattr(module, "idealised_training_flops", None) if module is not None else None
    if fn is None:
        return None
    accepted = inspect.signature(fn).parameters
    return lambda sample, shape: int(fn(**{k: v for k, v in sample.items() if k in accepted}, **shape))


def idealised_column(frame: pd.DataFrame) -> tuple[np.ndarray, dict[str, str]]:
    """Idealised training FLOPs of every run (family, shape, samples, bodies columns) and, per family, how it
    was counted ('nonzero terms' or why the executed count was kept)."""
    from study.benchmark.format import MARKERS, PROPS

    out = frame["executed"].to_numpy(float).copy()
    how: dict[str, str] = {}
    for family in sorted(frame["family"].unique()):
        try:
            counter = idealised_counter(family)
        except ConfigError:
            how[family] = "executed count (no installed family of that name to count)"
            continue
        if counter is None:
            how[family] = "executed count (no idealised count: none of its products is structured)"
            continue
        rows = np.flatnonzero(frame["family"].to_numpy() == family)
        counted = out[rows].copy()
        try:
            for k, i in enumerate(rows):
                shape, samples = frame["shape"].iat[i], frame["samples"].iat[i]
                sample = {"bodies": int(frame["bodies"].iat[i]), "markers": MARKERS, "props": PROPS}
                counted[k] = float(samples) * counter(sample, dict(shape))
        except (TypeError, ValueError, ConfigError) as exc:   # a stored shape the family's count cannot take
            how[family] = f"executed count kept (a stored shape cannot be counted: {type(exc).__name__}: {exc})"
            continue
        out[rows] = counted
        how[family] = "nonzero terms of its equivariant maps and bilinears"
    return out, how


def with_axis_columns(frame: pd.DataFrame, axes=AXES) -> tuple[pd.DataFrame, dict[str, str]]:
    """The frame with the idealised column filled in when `axes` asks for it (storage runs carry the other
    columns from loading); returns (frame, notes on how the idealised count was made)."""
    notes: dict[str, str] = {}
    if IDEALISED in axes and frame["idealised"].isna().any():
        frame = frame.copy()
        frame["idealised"], notes = idealised_column(frame)
    return frame, notes
