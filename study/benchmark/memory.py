"""How much memory a dataset takes, how much the machine has, and the check that refuses what cannot fit.

A scene is stored compactly as float32: pos0, vel0, posT (K, M, 3) and props (K, P), plus one contact
byte: 4·(3·K·M·3 + K·P) + 1 bytes, 705 at the default K = 4 (5·10^5 scenes: 353 MB). The check runs
before anything is simulated, read or stored, so a data size that cannot fit is one ConfigError line
(exit 2) instead of a machine that swaps or a process killed hours into generation.
"""

from __future__ import annotations

import os
from pathlib import Path

from study.benchmark.config import BenchmarkConfig
from study.benchmark.format import MARKERS, PROPS
from study.errors import ConfigError

# Copies of the arrays a run may hold at once: the dataset itself plus as much again for the
# generation/loading transients and the copy shipped to workers (Ray's object store).
COPIES = 2


def bytes_per_scene(bodies: int) -> int:
    """Bytes one scene takes in memory and on disk (float32 arrays plus the contact flag)."""
    return 4 * (3 * bodies * MARKERS * 3 + bodies * PROPS) + 1


def dataset_bytes(config: BenchmarkConfig) -> int:
    """Bytes of all the dataset's arrays (every split)."""
    return config.scenes * bytes_per_scene(config.bodies)


def available_memory() -> int | None:
    """Bytes this process can still allocate without swapping: the smaller of the machine's available
    memory (/proc/meminfo MemAvailable, else sysconf's free pages) and the cgroup's remaining limit;
    None when neither can be read."""
    limits = [value for value in (_meminfo_available(), _cgroup_remaining()) if value is not None]
    return min(limits) if limits else None


def check_fits_memory(config: BenchmarkConfig, *, copies: int = COPIES, available: int | None = None) -> None:
    """ConfigError (one line) when `copies` of the dataset of `config` exceed the available memory."""
    available = available_memory() if available is None else available
    if available is None:
        return
    need = copies * dataset_bytes(config)
    if need > available:
        fit = max(0, available // (copies * bytes_per_scene(config.bodies)))
        raise ConfigError(
            f"scenes={config.scenes} does not fit in memory: {copies} x {dataset_bytes(config) / 2**30:.2f} GiB "
            f"({bytes_per_scene(config.bodies)} bytes/scene at {config.bodies} bodies) needed, "
            f"{available / 2**30:.2f} GiB available; use at most {fit} scenes")


def _meminfo_available() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return None


def _cgroup_remaining() -> int | None:
    """memory.max - memory.current of this process's cgroup (v2), or the v1 equivalent; None if unlimited."""
    for limit_file, usage_file in (("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
                                   ("/sys/fs/cgroup/memory/memory.limit_in_bytes",
                                    "/sys/fs/cgroup/memory/memory.usage_in_bytes")):
        try:
            limit = Path(limit_file).read_text().strip()
            usage = int(Path(usage_file).read_text().strip())
        except (OSError, ValueError):
            continue
        if limit == "max" or int(limit) >= 2**60:
            return None
        return max(0, int(limit) - usage)
    return None
