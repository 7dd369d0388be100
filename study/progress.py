"""Live progress of a run: one compact line per finished trial (study done/target, best loss, overall ETA)."""

from __future__ import annotations

import math
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import TextIO


@dataclass
class _Study:
    complete: int
    target: int
    best: float = math.inf
    capped: bool = False            # the target is an adaptive sampler's cap: an upper bound until it decides
    decided: bool = False           # its adaptive sampler decided it is done (`Progress.study_done`)


@dataclass
class Progress:
    """Counts COMPLETE trials per study against its target and prints a line when a trial ends."""

    studies: dict[str, _Study] = field(default_factory=dict)
    stream: TextIO | None = None
    enabled: bool = True
    started: float = field(default_factory=time.monotonic)
    finished_here: int = 0
    bar: bool = False               # also a progress bar of all trials (tqdm; a widget in a notebook)
    expected: dict[str, float] = field(default_factory=dict)   # study -> slot-seconds per trial, expected before
    slots: int = 0                  # concurrent trial slots (0: unknown; the ETA is then wall time per trial)
    spent: dict[str, list] = field(default_factory=dict)        # study -> [slot-seconds, trials] finished here
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _bar: object = None

    def __getstate__(self) -> dict:  # Tune pickles its search algorithm (and so this) when it starts
        state = dict(self.__dict__)
        state.pop("_lock")
        state["stream"], state["_bar"] = None, None
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state, _lock=threading.Lock())

    def close(self) -> None:
        """Close the progress bar (if any)."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def add_study(self, name: str, *, complete: int, target: int, best: float | None = None,
                  capped: bool = False) -> None:
        """`capped`: `target` is an adaptive sampler's cap, which it may stop short of (`study_done`)."""
        self.studies[name] = _Study(complete, target, math.inf if best is None else best, capped)

    def study_done(self, name: str) -> None:
        """An adaptive study decided it needs no more trials: its target becomes what it has."""
        with self._lock:
            study = self.studies[name]
            study.target, study.capped, study.decided = study.complete, False, True

    @property
    def bounded(self) -> bool:
        """Some study still to go counts to its cap: the ETA is an upper bound."""
        return any(s.capped and s.complete < s.target for s in self.studies.values())

    @property
    def remaining(self) -> int:
        return sum(max(0, s.target - s.complete) for s in self.studies.values())

    def eta_seconds(self) -> float | None:
        """The slot-seconds the remaining trials need, over the slots: per study its mean per trial finished in this
        run, else its expected cost (`expected`) times its family's ratio of spent to expected so far. Without
        slots or expected costs: remaining trials times the mean wall time per trial finished here. None before the
        first trial ends."""
        if not self.finished_here:
            return None
        if not (self.slots and self.spent and set(self.studies) <= set(self.expected) | set(self.spent)):
            return (time.monotonic() - self.started) / self.finished_here * self.remaining
        ratios: dict[str, list[float]] = {}
        for name, (seconds, n) in self.spent.items():
            if name in self.expected and n:
                pair = ratios.setdefault(_family(name), [0.0, 0.0])
                pair[0] += seconds
                pair[1] += n * self.expected[name]
        total = 0.0
        for name, study in self.studies.items():
            seconds, n = self.spent.get(name, (0.0, 0))
            if n:
                per_trial = seconds / n
            else:
                spent, expected = ratios.get(_family(name), (1.0, 1.0))
                per_trial = self.expected[name] * spent / expected
            total += max(0, study.target - study.complete) * per_trial
        return total / self.slots

    def trial_finished(self, name: str, *, value: float | None, detail: str = "", seconds: float | None = None) -> None:
        """Record a finished trial (value None = failed; `seconds`: the slot-seconds it took) and print its line."""
        with self._lock:
            study = self.studies[name]
            if value is not None:
                study.complete += 1
                if study.decided:                                    # a trial that was running when it decided
                    study.target = max(study.target, study.complete)
                study.best = min(study.best, value)
                self.finished_here += 1
                if seconds is not None and seconds > 0:
                    spent = self.spent.setdefault(name, [0.0, 0])
                    spent[0] += seconds
                    spent[1] += 1
            outcome = f"val {value:.4g}" if value is not None else f"FAILED ({detail})"
            self._print(f"{name:<22} {study.complete}/{study.target}  {outcome:<16} best {_fmt(study.best)}")

    def message(self, text: str) -> None:
        with self._lock:
            self._print(text)

    def _print(self, text: str) -> None:
        if not self.enabled:
            return
        elapsed = time.monotonic() - self.started
        done = sum(min(s.complete, s.target) for s in self.studies.values())
        total = sum(s.target for s in self.studies.values())
        eta = self.eta_seconds()
        bound = " ≤" if self.bounded else ""       # adaptive studies counted to their caps
        tail = f"| all {done}/{total}" + (f"  ETA{bound} {_duration(eta)}" if eta is not None and self.remaining else "")
        line = f"[{_duration(elapsed)}] {text}  {tail}"
        if not (self.bar and total):
            print(line, file=self.stream or sys.stderr, flush=True)
            return
        from tqdm.auto import tqdm

        if self._bar is None:
            self._bar = tqdm(total=total, initial=done, unit="trial", desc="equiscale", file=self.stream or sys.stderr)
        self._bar.write(line, file=self.stream or sys.stderr)
        self._bar.n = done
        self._bar.refresh()


def _family(study_name: str) -> str:
    return study_name.rsplit("/", 1)[0]


def _fmt(value: float) -> str:
    return "-" if not math.isfinite(value) else f"{value:.4g}"


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 60:d}m{seconds % 60:02d}s"
