"""Where commands write files: checked before any work, written whole or not at all, never over a database."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from study.errors import EquiscaleError

SQLITE_MAGIC = b"SQLite format 3\x00"


def check_output_file(path: str | Path, *, option: str = "--out") -> Path:
    """A file path a command may (over)write: its folder exists and is writable, it is not a folder, and it
    is not an SQLite database (an `--out` that names the study storage must not destroy it)."""
    path = Path(path)
    if path.is_dir():
        raise EquiscaleError(f"{option}: {path} is a directory; give a file name")
    if not path.parent.is_dir():
        raise EquiscaleError(f"{option}: directory {path.parent} does not exist")
    if not os.access(path.parent, os.W_OK):
        raise EquiscaleError(f"{option}: directory {path.parent} is not writable")
    if path.is_file() and path.read_bytes()[: len(SQLITE_MAGIC)] == SQLITE_MAGIC:
        raise EquiscaleError(f"{option}: {path} is an SQLite database (a study storage?); refusing to overwrite it")
    return path


def check_output_dir(path: str | Path, *, option: str = "--out") -> Path:
    """A folder a command may write into: existing and writable, or creatable below a writable folder."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise EquiscaleError(f"{option}: {path} exists and is not a directory")
    existing = next(p for p in (path, *path.parents) if p.exists())
    if not existing.is_dir() or not os.access(existing, os.W_OK):
        raise EquiscaleError(f"{option}: cannot write below {existing} (not a writable directory)")
    return path


def write_text(path: str | Path, text: str, *, option: str = "--out") -> None:
    """Write `text` to `path` atomically (a temporary file renamed over it); a full device or a read-only
    place is one error line, and leaves any earlier file as it was."""
    path = Path(path)
    try:
        fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    except OSError as exc:
        raise EquiscaleError(f"{option}: cannot write in {path.parent}: {exc.strerror or exc}") from None
    tmp = Path(name)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise EquiscaleError(f"{option}: cannot write {path}: {exc.strerror or exc}") from None
