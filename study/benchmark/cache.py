"""The on-disk dataset cache: one `.npz` per cache key, written atomically, verified on every load.

A file holds the public arrays (pos0, vel0, props, posT as float32), the contact flags and a JSON
`meta` record (settings, format version, statistics, SHA-256 of every array). A file that fails to
open, lacks an array, has the wrong shapes or settings, or whose checksum differs is reported as
corrupted (`CacheError`) and never used; it is left in place for the user to inspect or delete.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from study.benchmark.config import FORMAT_VERSION, BenchmarkConfig
from study.benchmark.format import ARRAYS, MARKERS, PROPS
from study.errors import EquiscaleError

STORED = (*ARRAYS, "contact")


class CacheError(EquiscaleError):
    """The cache directory cannot be used or a cache file is corrupted."""


def default_cache_dir() -> Path:
    """`$EQUISCALE_CACHE_DIR` if set, else `~/.cache/equiscale`."""
    env = os.environ.get("EQUISCALE_CACHE_DIR")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "equiscale"


def cache_path(config: BenchmarkConfig, cache_dir: str | os.PathLike | None = None) -> Path:
    """Where the dataset of `config` lives (or will live)."""
    root = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    return root / "benchmark" / f"{config.key}.npz"


def ensure_writable(path: Path) -> None:
    """Create the file's directory and prove it is writable, before spending time on generation."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path.parent, prefix=".probe-", delete=True):
            pass
    except OSError as exc:
        raise CacheError(f"cache directory {path.parent} is not writable: {exc.strerror or exc}") from None


def save(path: Path, config: BenchmarkConfig, arrays: dict[str, np.ndarray], stats: dict) -> None:
    """Write the arrays and meta to `path` atomically (temporary file in the same folder, then rename)."""
    ensure_writable(path)
    meta = {
        "format_version": FORMAT_VERSION,
        "config": dataclasses.asdict(config),
        "key": config.key,
        "stats": stats,
        "sha256": {name: _digest(arrays[name]) for name in STORED},
    }
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}-", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            np.savez(handle, **{name: arrays[name] for name in STORED}, meta=np.array(json.dumps(meta)))
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise CacheError(f"cannot write cache file {path}: {exc.strerror or exc}") from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load(path: Path, config: BenchmarkConfig) -> tuple[dict[str, np.ndarray], dict]:
    """Read and verify a cache file written by `save` for `config`: (arrays incl. contact, stats)."""
    try:
        with np.load(path, allow_pickle=False) as npz:
            missing = [name for name in (*STORED, "meta") if name not in npz.files]
            if missing:
                raise _corrupt(path, f"missing {', '.join(missing)}")
            meta = json.loads(str(npz["meta"]))
            arrays = {name: npz[name] for name in STORED}
    except CacheError:
        raise
    except (PermissionError, IsADirectoryError) as exc:
        raise CacheError(f"cannot read cache file {path}: {exc.strerror or exc}") from None
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, json.JSONDecodeError) as exc:
        raise _corrupt(path, f"unreadable ({type(exc).__name__}: {exc})") from None
    _verify(path, config, arrays, meta)
    return arrays, meta.get("stats", {})


def _verify(path: Path, config: BenchmarkConfig, arrays: dict[str, np.ndarray], meta: dict) -> None:
    if not isinstance(meta, dict) or meta.get("format_version") != FORMAT_VERSION:
        raise _corrupt(path, "wrong format version")
    if meta.get("config") != json.loads(json.dumps(dataclasses.asdict(config))):
        raise _corrupt(path, "settings do not match its key")
    S, K = config.scenes, config.bodies
    expected = {"pos0": (S, K, MARKERS, 3), "vel0": (S, K, MARKERS, 3), "posT": (S, K, MARKERS, 3),
                "props": (S, K, PROPS), "contact": (S,)}
    for name, shape in expected.items():
        dtype = np.bool_ if name == "contact" else np.float32
        if arrays[name].shape != shape or arrays[name].dtype != dtype:
            raise _corrupt(path, f"{name} has shape {arrays[name].shape} {arrays[name].dtype}, expected {shape}")
    sums = meta.get("sha256", {})
    for name in STORED:
        if sums.get(name) != _digest(arrays[name]):
            raise _corrupt(path, f"checksum mismatch in {name}")


def _digest(array: np.ndarray) -> str:
    """SHA-256 of the array's C-order bytes, read in place (no copy of a large array)."""
    flat = np.ascontiguousarray(array).reshape(-1).view(np.uint8)
    digest = hashlib.sha256()
    for lo in range(0, len(flat), 1 << 24):
        digest.update(flat[lo:lo + (1 << 24)])
    return digest.hexdigest()


def _corrupt(path: Path, reason: str) -> CacheError:
    return CacheError(f"cache file {path} is corrupted ({reason}); delete it to regenerate")
