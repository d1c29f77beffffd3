"""Write files so that a reader sees either the old file, the whole new file, or nothing: never half of one.

A writer works on a temporary sibling named after its host and process, `.partial-<pid>@<host>@<name>`. A writer
killed without cleanup (SIGKILL, or a cluster's SIGTERM at a time limit) leaves it behind; the next writer of the same
path on that host deletes the temporaries of processes that no longer run, so reruns do not pile up gigabytes of
half-written files beside the outputs.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path

_HOST = socket.gethostname()
_KINDS = ("partial", "replaced")  # a file or folder being written; a folder being replaced


def _temporary(path: Path, kind: str) -> Path:
    # "@" cannot occur in a hostname, so the host and the name are never confused
    return path.with_name(f".{kind}-{os.getpid()}@{_HOST}@{path.name}")


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, OverflowError):  # gone, or a number no process can have
        return False
    except PermissionError:  # another user's process
        return True
    return True


def remove_leftovers(path: Path) -> None:
    """Delete the temporaries of `path` left by writers on this host that no longer run (those of other hosts, on a
    shared filesystem, cannot be judged from here and stay)."""
    for kind in _KINDS:
        pattern = re.compile(rf"\.{kind}-(\d+)@{re.escape(_HOST)}@{re.escape(path.name)}")
        for leftover in path.parent.glob(f".{kind}-*"):
            match = pattern.fullmatch(leftover.name)
            if match and int(match[1]) != os.getpid() and not _running(int(match[1])):
                if leftover.is_dir() and not leftover.is_symlink():
                    shutil.rmtree(leftover, ignore_errors=True)
                else:
                    leftover.unlink(missing_ok=True)


def publish(tmp: str | Path, path: str | Path) -> None:
    """Flush the finished file `tmp` to disk and rename it over `path` (same filesystem: one atomic step)."""
    with open(tmp, "rb+") as handle:
        os.fsync(handle.fileno())
    os.replace(tmp, path)


@contextlib.contextmanager
def atomic_output(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside `path` (same suffixes, so writers that look at them still work); on success
    it is published over `path`, on any error it is removed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_leftovers(path)
    tmp = _temporary(path, "partial")
    try:
        yield tmp
        publish(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_directory(path: str | Path, *, keep_existing: bool = False) -> Iterator[Path]:
    """Yield a temporary folder beside `path` to fill; on any error it is removed, on success it becomes `path`.

    A folder already at `path` is replaced: a stage rerun outside Snakemake (which removes outputs first) must not
    keep the old result. With `keep_existing` (a cache that any job may build once) a folder another process made
    meanwhile wins and ours is dropped.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_leftovers(path)
    tmp = _temporary(path, "partial")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        yield tmp
        try:
            os.rename(tmp, path)
        except OSError as error:
            if error.errno not in (errno.EEXIST, errno.ENOTEMPTY) or not path.is_dir():
                raise
            if not keep_existing:
                old = _temporary(path, "replaced")
                shutil.rmtree(old, ignore_errors=True)
                os.rename(path, old)
                try:
                    os.rename(tmp, path)
                except OSError:
                    os.rename(old, path)
                    raise
                shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
