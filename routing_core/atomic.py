"""Atomic writes: every output, checkpoint and cache file is written to a temporary name in its own folder and
renamed into place, so a crash, a kill or a full disk leaves either the old file or the new one, never half.

A leaf module (standard library only), used by the CLI, checkpoints and the embedding cache.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

TMP_MARK = ".tmp-"


def _tmp_prefix(path: Path) -> str:
    """Hidden temp names that say what they are for and which process made them (stale ones can be cleaned)."""
    return f".{path.name}{TMP_MARK}{os.getpid()}-"


def _fsync_dir(folder: Path) -> None:
    """Make a rename durable (best effort: not every file system supports fsync on a directory)."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _umask() -> int:
    """The process umask: from /proc on Linux (no race), else by setting and restoring it."""
    with contextlib.suppress(OSError, ValueError, StopIteration):
        with open("/proc/self/status", encoding="ascii") as f:
            return int(next(line for line in f if line.startswith("Umask:")).split()[1], 8)
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _publish_mode(path: Path, is_dir: bool, keep: int | None = None) -> None:
    """Give a renamed temp file or folder the mode a plain write would have (mkstemp/mkdtemp make 0600/0700)."""
    mode = keep if keep is not None else (0o777 if is_dir else 0o666) & ~_umask()
    with contextlib.suppress(OSError):
        os.chmod(path, mode)


def atomic_write(path: str | Path, write: Callable[[Path], None]) -> Path:
    """Call `write(tmp)` to fill a temp file next to `path`, then rename it over `path` (removing it on error)."""
    path = Path(path)
    if path.exists() and not path.is_file():  # /dev/stdout, a pipe: write through, never replace the node
        if path.is_dir():
            raise IsADirectoryError(f"{path}: is a directory, expected a file path")
        write(path)
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=_tmp_prefix(path), suffix=path.suffix)
    os.close(fd)
    tmp = Path(name)
    keep = path.stat().st_mode & 0o7777 if path.is_file() else None  # replacing a file keeps its mode
    try:
        write(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        _publish_mode(tmp, is_dir=False, keep=keep)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    _fsync_dir(path.parent)
    return path


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write bytes atomically."""

    def write(tmp: Path) -> None:
        tmp.write_bytes(data)

    return atomic_write(path, write)


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write UTF-8 text atomically."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_temps(folder: str | Path, name: str | None = None) -> int:
    """Delete temp files/folders left next to `name` (any name when None) by processes that no longer run.

    Returns how many were removed; temps of live processes (a concurrent writer) are left alone.
    """
    folder = Path(folder)
    removed = 0
    if not folder.is_dir():
        return 0
    for p in folder.iterdir():
        head, mark, rest = p.name.partition(TMP_MARK)
        if not mark or not head.startswith(".") or (name is not None and head != f".{name}"):
            continue
        pid_s = rest.split("-", 1)[0]
        if pid_s.isdigit() and int(pid_s) != os.getpid() and not _pid_alive(int(pid_s)):
            if p.is_dir() and not p.is_symlink():
                shutil.rmtree(p, ignore_errors=True)
            else:
                with contextlib.suppress(OSError):
                    p.unlink()
            removed += 1
    return removed


@contextlib.contextmanager
def atomic_directory(path: str | Path, overwrite: bool = True) -> Iterator[Path]:
    """Build a folder under a temp name and move it to `path` on success; on failure `path` is untouched.

    An existing non-empty `path` is replaced only when `overwrite` (else FileExistsError); the old folder is moved
    aside first and deleted after the new one is in place, so at every moment `path` is whole or absent.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists() and not path.is_dir():
        raise NotADirectoryError(f"{path}: exists and is not a folder")
    if not overwrite and path.is_dir() and any(path.iterdir()):
        raise FileExistsError(f"{path}: folder exists and is not empty")
    remove_stale_temps(path.parent, path.name)
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=_tmp_prefix(path)))
    try:
        yield tmp
        _publish_mode(tmp, is_dir=True)
        for f in tmp.rglob("*"):
            if f.is_file():
                with open(f, "rb+") as fh:
                    os.fsync(fh.fileno())
                _publish_mode(f, is_dir=False)
            elif f.is_dir():
                _publish_mode(f, is_dir=True)
        if path.is_dir() and any(path.iterdir()):
            old = Path(tempfile.mkdtemp(dir=path.parent, prefix=_tmp_prefix(path)))
            os.replace(path, old / "old")
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            if path.is_dir():
                path.rmdir()
            os.replace(tmp, path)
        _fsync_dir(path.parent)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def check_writable_file(path: str | Path, what: str = "output") -> Path:
    """Fail before any work if `path` cannot be written: a folder, a missing/readonly parent, a full disk.

    Creates missing parent folders (as the write would) and probes with a temp file that is removed again.
    """
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"{what} {path} is a directory, expected a file path")
    if path.exists() and not path.is_file():  # a device or a pipe: written through, nothing to probe
        return path
    parent = path.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise PermissionError(f"{what} {path}: cannot create folder {parent} ({e.strerror or e})") from e
    if not parent.is_dir():
        raise NotADirectoryError(f"{what} {path}: {parent} is not a folder")
    try:
        fd, name = tempfile.mkstemp(dir=parent, prefix=_tmp_prefix(path))
        os.close(fd)
        os.unlink(name)
    except OSError as e:
        raise PermissionError(f"{what} {path}: cannot write in {parent} ({e.strerror or e})") from e
    if path.exists() and not os.access(path, os.W_OK):
        raise PermissionError(f"{what} {path}: file exists and is read-only")
    return path
