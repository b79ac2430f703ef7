"""Atomic file writes: a reader sees the old file or the new one, never half of one.

The pattern is write to a temporary file in the same directory, flush and fsync it, then
`os.replace` it over the target (atomic on POSIX), then fsync the directory so the rename
itself survives a crash.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any


def fsync_dir(path: str | os.PathLike[str]) -> None:
    """Flush a directory entry to disk so that a rename inside it is durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike[str], mode: str = "w") -> Iterator[IO[Any]]:
    """Open a temporary sibling of ``path`` for writing and move it over ``path`` on success.

    If the body raises, the temporary file is removed and ``path`` is left as it was.

    Args:
        path: the file to (re)write; its parent directory must exist.
        mode: ``"w"`` for text (UTF-8) or ``"wb"`` for bytes.

    Example:
        >>> with atomic_open(tmp_path / "x.txt") as f:  # doctest: +SKIP
        ...     f.write("hello")
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_open mode must be 'w' or 'wb' (got {mode!r})")
    target = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        # mkstemp creates 0600; give the file the mode an ordinary open() would (or the old one).
        os.chmod(tmp, target.stat().st_mode & 0o777 if target.exists() else 0o644)
        encoding = None if "b" in mode else "utf-8"
        with os.fdopen(fd, mode, encoding=encoding) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    fsync_dir(target.parent)


def write_json(path: str | os.PathLike[str], data: Any) -> Path:
    """Write ``data`` as indented JSON to ``path`` atomically and return the path."""
    with atomic_open(path) as handle:
        json.dump(data, handle, indent=2, sort_keys=True)
        handle.write("\n")
    return Path(path)


def _fsync_tree(root: Path) -> None:
    """Fsync every file and directory under ``root`` (deepest first), then ``root``."""
    for path in sorted(root.rglob("*"), reverse=True):
        if path.is_dir():
            fsync_dir(path)
        else:
            with path.open("rb") as handle:
                os.fsync(handle.fileno())
    fsync_dir(root)


@contextlib.contextmanager
def atomic_directory(target: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield an empty hidden sibling of ``target`` to fill; on success it becomes ``target``.

    The files are fsynced, an existing ``target`` is moved aside, the sibling is renamed into
    place (if that rename fails, the old ``target`` is put back) and the old one deleted. On
    an exception in the body the sibling is deleted and ``target`` is left as it was. The
    parent directory is created if missing; the new directory gets mode 0755 (``mkdtemp``
    makes it owner-only).

    Example:
        >>> with atomic_directory(tmp_path / "adapter") as staging:  # doctest: +SKIP
        ...     (staging / "adapter_config.json").write_text("{}")
    """
    final = Path(target)
    final.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent))
    try:
        yield staging
        staging.chmod(0o755)
        _fsync_tree(staging)
        _swap_into_place(staging, final)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    fsync_dir(final.parent)


def _swap_into_place(staging: Path, target: Path) -> None:
    """Rename ``staging`` to ``target``, replacing any old ``target`` (restored on failure)."""
    old = None
    if target.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old.", dir=target.parent))
        os.replace(target, old / target.name)
    try:
        os.replace(staging, target)
    except BaseException:
        if old is not None:
            os.replace(old / target.name, target)
        raise
    finally:
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
