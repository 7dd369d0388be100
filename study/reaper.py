"""Reaps the local Ray processes of a driver that died without shutting Ray down (e.g. `kill -9`).

`python -m study.reaper PID` watches the driver PID, remembering its descendants (Ray's GCS, raylet and
workers); when the driver is gone it kills those still alive, then exits. Started by
`study.adapter.start_ray` for a private local cluster only; Linux (/proc), elsewhere it exits at once.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

PROC = Path("/proc")


def _stat(pid: int) -> tuple[int, int] | None:
    """(parent pid, start time) of a process, or None when it is gone."""
    try:
        fields = (PROC / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return int(fields[1]), int(fields[19])


def descendants(*roots: int) -> dict[int, int]:
    """pid -> start time of every live descendant of `roots`."""
    table = {}
    for entry in PROC.iterdir():
        if entry.name.isdigit():
            stat = _stat(int(entry.name))
            if stat is not None:
                table[int(entry.name)] = stat
    found, frontier = {}, list(roots)
    while frontier:
        parent = frontier.pop()
        for pid, (ppid, start) in table.items():
            if ppid == parent and pid not in found:
                found[pid] = start
                frontier.append(pid)
    return found


def _signal(processes: dict[int, int], signum: int) -> None:
    for pid, start in processes.items():
        stat = _stat(pid)
        if stat is not None and stat[1] == start:  # the same process, not a reused pid
            try:
                os.kill(pid, signum)
            except ProcessLookupError:  # it ended between the look and the signal
                continue


def watch(driver: int, *, interval: float = 0.2) -> None:
    seen: dict[int, int] = {}
    me = os.getpid()
    while _stat(driver) is not None:
        seen.update({pid: start for pid, start in descendants(driver).items() if pid != me})
        time.sleep(interval)
    # Freeze first, so that nothing spawns while we look again: children started since the last look are
    # still children of a frozen process, and are killed with it.
    _signal(seen, signal.SIGSTOP)
    seen.update({pid: start for pid, start in descendants(*seen).items() if pid != me})
    _signal(seen, signal.SIGKILL)


def main() -> int:
    if not PROC.is_dir() or len(sys.argv) != 2:
        return 0
    signal.signal(signal.SIGINT, signal.SIG_IGN)   # Ctrl-C in the driver's terminal is the driver's to handle
    watch(int(sys.argv[1]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
