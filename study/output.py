"""Where commands write files: checked before any work, written whole or not at all, never over a database."""

from __future__ import annotations

import os
import shutil
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


def write_files(folder: str | Path, files: dict[str, bytes], *, option: str = "--out") -> list[Path]:
    """Write `files` (path relative to `folder` -> content) all or nothing: staged in a temporary folder
    beside their destination, then moved into place. A `folder` that did not exist appears whole (one
    rename of its topmost new ancestor); in an existing one each file replaces its predecessor (files not
    named are left alone). An OSError is one error line and leaves no temporary behind."""
    folder = Path(folder)
    existing = next(p for p in (folder, *folder.parents) if p.exists())
    new_top = None if existing == folder else folder.relative_to(existing).parts[0]
    stage = existing / f".{new_top or folder.name}.tmp-{os.getpid()}-{os.urandom(4).hex()}"
    try:
        os.mkdir(stage)
        root = stage / folder.relative_to(existing / new_top) if new_top else stage
        written = []
        for rel, content in files.items():
            path = root / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(content)
            written.append(folder / rel)
        if new_top:
            os.rename(stage, existing / new_top)
        else:
            for rel in files:  # every folder first, so that the renames (which do not fail alone) come last
                (folder / rel).parent.mkdir(parents=True, exist_ok=True)
                if (folder / rel).is_dir():
                    raise IsADirectoryError(21, "Is a directory", str(folder / rel))
            for rel in files:
                os.replace(stage / rel, folder / rel)
            shutil.rmtree(stage)
    except OSError as exc:
        shutil.rmtree(stage, ignore_errors=True)
        raise EquiscaleError(f"{option}: cannot write in {folder}: {exc.strerror or exc}") from None
    return written
