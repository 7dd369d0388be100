"""Where commands write files: checked before any work, written whole or not at all, never over a database.

A file is written as a temporary file beside its destination, then renamed over it, so a reader sees the old
file or the new one, never a part. What the path names is respected:

- a symbolic link is written through: its target (resolved, chains included) is replaced, the link stays;
- a path that exists and is not a regular file (a device, a FIFO, a socket) is refused, one line;
- a new file gets the mode the umask gives (0644 under the usual 022), as `open()` would; a replaced file
  keeps its mode (and, where permitted, its owner);
- a failed write (a full device, an I/O error) is one error line and leaves no temporary behind: the earlier
  file, if any, stays as it was.
"""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
from pathlib import Path

from study.errors import EquiscaleError

SQLITE_MAGIC = b"SQLite format 3\x00"


def _real(path: Path) -> Path:
    """Where writing `path` lands: symbolic links followed to their (possibly not yet existing) target."""
    return Path(os.path.realpath(path))


def _check_kind(path: Path, real: Path, option: str) -> None:
    """A destination that exists must be a regular file."""
    try:
        mode = os.stat(real).st_mode
    except FileNotFoundError:
        return
    except OSError as exc:
        raise EquiscaleError(f"{option}: cannot use {path}: {exc.strerror or exc}") from None
    if stat.S_ISDIR(mode):
        raise EquiscaleError(f"{option}: {path} is a directory; give a file name")
    if not stat.S_ISREG(mode):
        what = ("a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else "a FIFO" if stat.S_ISFIFO(mode)
                else "a socket" if stat.S_ISSOCK(mode) else "not a regular file")
        via = f" (through the link to {real})" if path.is_symlink() else ""
        raise EquiscaleError(f"{option}: {path} is {what}{via}, not a regular file; refusing to replace it")


def check_output_file(path: str | Path, *, option: str = "--out") -> Path:
    """A file path a command may (over)write: its folder exists and is writable, it is a regular file or does
    not exist yet (a symbolic link counts as its target), and it is not an SQLite database (an `--out` that
    names the study storage must not destroy it)."""
    path = Path(path)
    real = _real(path)
    _check_kind(path, real, option)
    if not real.parent.is_dir():
        raise EquiscaleError(f"{option}: directory {real.parent} does not exist")
    if not os.access(real.parent, os.W_OK):
        raise EquiscaleError(f"{option}: directory {real.parent} is not writable")
    if real.is_file():
        try:
            with open(real, "rb") as handle:
                head = handle.read(len(SQLITE_MAGIC))
        except OSError as exc:
            raise EquiscaleError(f"{option}: cannot read {path}: {exc.strerror or exc}") from None
        if head == SQLITE_MAGIC:
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


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _stage(real: Path, data: bytes) -> Path:
    """`data` in a new temporary file beside `real`, flushed to the device, with the mode (and owner) `real`
    has, or the umask's for a new file; removed again when anything fails (OSError raised)."""
    fd, name = tempfile.mkstemp(dir=real.parent, prefix=f".{real.name}.")
    tmp = Path(name)
    try:
        try:
            _write_all(fd, data)
            os.fsync(fd)  # a full device or an I/O error shows here, not after the rename
        finally:
            os.close(fd)
        try:
            old = os.stat(real)
        except FileNotFoundError:
            os.chmod(tmp, 0o666 & ~_umask())
        else:
            os.chmod(tmp, stat.S_IMODE(old.st_mode))
            try:
                os.chown(tmp, old.st_uid, old.st_gid)
            except OSError:
                pass  # not permitted (another user's file): ours, with its mode
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return tmp


def write_text(path: str | Path, text: str, *, option: str = "--out") -> None:
    """Write `text` to `path` atomically (a temporary file renamed over it, through a symbolic link); a path
    that is not a regular file, a full device or a read-only place is one error line, and leaves any earlier
    file as it was and no temporary behind."""
    path = Path(path)
    real = _real(path)
    _check_kind(path, real, option)
    try:
        tmp = _stage(real, text.encode("utf-8"))
    except OSError as exc:
        raise EquiscaleError(f"{option}: cannot write {path}: {exc.strerror or exc}") from None
    try:
        os.replace(tmp, real)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise EquiscaleError(f"{option}: cannot write {path}: {exc.strerror or exc}") from None


def write_files(folder: str | Path, files: dict[str, bytes], *, option: str = "--out") -> list[Path]:
    """Write `files` (path relative to `folder` -> content) all or nothing. A `folder` that did not exist
    appears whole (one rename of its topmost new ancestor, staged beside it). In an existing one every
    destination is checked first (a symbolic link is written through, anything but a regular file refused),
    each file is staged beside its destination, and only then are they renamed into place (files not named
    are left alone). An OSError is one error line and leaves no temporary behind."""
    folder = Path(folder)
    existing = next(p for p in (folder, *folder.parents) if p.exists())
    if existing != folder:
        return _write_new_folder(folder, existing, files, option)
    targets = {}
    for rel in files:
        real = _real(folder / rel)
        _check_kind(folder / rel, real, option)
        targets[rel] = real
    staged: list[Path] = []
    try:
        for rel, content in files.items():
            targets[rel].parent.mkdir(parents=True, exist_ok=True)
            staged.append(_stage(targets[rel], content))
        for tmp, rel in zip(staged, files):  # renames (which do not fail alone) come last
            os.replace(tmp, targets[rel])
    except OSError as exc:
        for tmp in staged:
            tmp.unlink(missing_ok=True)
        raise EquiscaleError(f"{option}: cannot write in {folder}: {exc.strerror or exc}") from None
    return [folder / rel for rel in files]


def _write_new_folder(folder: Path, existing: Path, files: dict[str, bytes], option: str) -> list[Path]:
    new_top = folder.relative_to(existing).parts[0]
    stage = existing / f".{new_top}.tmp-{os.getpid()}-{os.urandom(4).hex()}"
    try:
        os.mkdir(stage)   # folders and files as `open()`/`mkdir` make them: modes from the umask
        root = stage / folder.relative_to(existing / new_top)
        for rel, content in files.items():
            path = root / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(content)
        os.rename(stage, existing / new_top)
    except OSError as exc:
        shutil.rmtree(stage, ignore_errors=True)
        raise EquiscaleError(f"{option}: cannot write in {folder}: {exc.strerror or exc}") from None
    return [folder / rel for rel in files]
