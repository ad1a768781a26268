"""Exclusive locks on output paths: two dcar jobs never write into the same file or folder.

``with output_lock(path):`` holds an exclusive ``flock`` on ``.NAME.lock`` beside ``path`` (a file
or a folder; it need not exist yet) for the length of a job. A second job asking for the same
path is refused at once with one line naming the holder: pid, host, command and start time.
The kernel drops an ``flock`` when its process dies, so a lock left by a killed job is simply
taken over; the file is removed when the job ends.

Why ``fcntl.flock`` and not the ``filelock`` package: the refusal must name the first job, so the
lock file carries the holder's identity, and filelock's native lock does not record one (only
its soft locks do, with a staleness guess instead of the kernel's answer). Linux and macOS only,
like the rest of dcar. Locks on network file systems are as good as their ``flock`` support.
"""

from __future__ import annotations

import fcntl
import json
import os
import shlex
import socket
import sys
import time
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Iterator

from dcar.errors import DcarError

_held: dict[Path, int] = {}  # lock file -> nesting depth in this process (a job may lock twice)
_command: list[str] = []  # the running CLI command, set by `dcar.cli.main`


def set_command(argv: list[str]) -> None:
    """Record the command line that lock files name as the holder's."""
    _command[:] = ["dcar", *argv]


class LockedError(DcarError):
    """Another job holds the output."""


def lock_file_of(path: str | Path) -> Path:
    """``DIR/.NAME.lock`` for ``DIR/NAME``: beside the output, so it can be taken before it exists."""
    path = Path(os.path.abspath(path))
    return path.parent / f".{path.name}.lock"


@contextmanager
def output_lock(path: str | Path, kind: str = "file", command: str | None = None) -> Iterator[Path]:
    """Hold the exclusive lock on ``path`` (see module docstring); yields the lock file.

    ``kind`` ("file" or "folder") is what the job will write there: a folder where a file is
    expected, or the reverse, is refused before any work, as is a folder that cannot be written.
    """
    check_output(Path(path), kind)
    lock = lock_file_of(path)
    if lock in _held:
        _held[lock] += 1
        try:
            yield lock
        finally:
            _held[lock] -= 1
        return
    fd = _acquire(lock, Path(path), command)
    _held[lock] = 1
    try:
        yield lock
    finally:
        del _held[lock]
        lock.unlink(missing_ok=True)  # before unlocking: a waiter then sees a fresh file, not ours
        os.close(fd)


@contextmanager
def output_locks(*outputs: tuple[str | Path | None, str]) -> Iterator[None]:
    """Lock several ``(path, kind)`` outputs of one job (``None`` paths are skipped)."""
    with ExitStack() as stack:
        for path, kind in outputs:
            if path is not None:
                stack.enter_context(output_lock(path, kind))
        yield


def check_output(path: Path, kind: str) -> None:
    """Refuse, before any compute, an output that could not be written as ``kind``."""
    if kind == "file" and path.is_dir():
        raise DcarError(f"{path}: is a folder; give a file name to write")
    if kind == "folder" and path.exists() and not path.is_dir():
        raise DcarError(f"{path}: is a file; give a folder to write into")
    folder = path if kind == "folder" and path.is_dir() else _existing_parent(path)
    if not os.access(folder, os.W_OK | os.X_OK):
        raise DcarError(f"{path}: cannot write into {folder} (permission denied)")
    if kind == "file" and path.exists() and not os.access(path, os.W_OK):
        raise DcarError(f"{path}: exists and is read-only")


def _existing_parent(path: Path) -> Path:
    parent = Path(os.path.abspath(path)).parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise DcarError(f"{path}: {parent} is a file, not a folder")
    return parent


def _acquire(lock: Path, target: Path, command: str | None) -> int:
    try:
        lock.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise DcarError(f"{target}: cannot create its folder {lock.parent} ({err.strerror})") from None
    while True:
        try:
            fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as err:
            raise DcarError(f"{target}: cannot write into {lock.parent} ({err.strerror})") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise LockedError(f"{target} is in use by {describe_holder(lock)}; wait for it to end or choose another output") from None
        if _same_file(fd, lock):  # else the holder removed it between our open and flock: retry
            break
        os.close(fd)
    os.ftruncate(fd, 0)
    os.write(fd, json.dumps(_holder(command)).encode())
    return fd


def _same_file(fd: int, path: Path) -> bool:
    try:
        a, b = os.fstat(fd), os.stat(path)
    except FileNotFoundError:
        return False
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


def _holder(command: str | None) -> dict[str, object]:
    return {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "command": command or shlex.join(_command or sys.argv),
        "started": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
    }


def describe_holder(lock: Path) -> str:
    """'pid P on HOST since TIME (COMMAND)', as far as the lock file tells."""
    try:
        info = json.loads(lock.read_text(encoding="utf-8"))
        return f"pid {info['pid']} on {info['host']} since {info['started']} ({info['command']})"
    except (OSError, ValueError, KeyError, TypeError):
        return f"another process (lock file {lock})"
