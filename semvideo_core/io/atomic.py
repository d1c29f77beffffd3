"""Write files so that a reader sees either the old file, the whole new file, or nothing: never half of one."""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path


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
    tmp = path.with_name(f".partial-{os.getpid()}-{path.name}")
    try:
        yield tmp
        publish(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_directory(path: str | Path) -> Iterator[Path]:
    """Yield a temporary folder beside `path` to fill; on success it is renamed to `path` unless another process
    made `path` meanwhile (then ours is dropped), on any error it is removed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".partial-{os.getpid()}-{path.name}")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        yield tmp
        try:
            os.rename(tmp, path)
        except OSError:  # made meanwhile by another job
            pass
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
