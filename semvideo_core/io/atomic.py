"""Write files so that a reader sees either the old file, the whole new file, or nothing: never half of one."""

from __future__ import annotations

import contextlib
import errno
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
def atomic_directory(path: str | Path, *, keep_existing: bool = False) -> Iterator[Path]:
    """Yield a temporary folder beside `path` to fill; on any error it is removed, on success it becomes `path`.

    A folder already at `path` is replaced: a stage rerun outside Snakemake (which removes outputs first) must not
    keep the old result. With `keep_existing` (a cache that any job may build once) a folder another process made
    meanwhile wins and ours is dropped.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".partial-{os.getpid()}-{path.name}")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        yield tmp
        try:
            os.rename(tmp, path)
        except OSError as error:
            if error.errno not in (errno.EEXIST, errno.ENOTEMPTY) or not path.is_dir():
                raise
            if not keep_existing:
                old = path.with_name(f".replaced-{os.getpid()}-{path.name}")
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
