"""Append-only JSONL answer cache: one record per finished request, flushed and fsynced before it counts.

A killed run leaves at most one torn last line (a record cut mid-write), which is dropped when the cache is next
opened; every earlier record is intact, so a rerun skips all finished requests. Any other unreadable line is an
error naming the file and the line: the cache is never silently rewritten.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from pathlib import Path

log = logging.getLogger(__name__)


class AnswerCache:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.records: dict[str, dict] = {}
        self._repair_torn_tail()
        with open(self.path, "a+b") as handle:
            handle.seek(0)
            for number, line in enumerate(handle, start=1):
                try:
                    record = json.loads(line)
                    self.records[record["key"]] = record
                except (ValueError, KeyError, TypeError) as error:
                    raise ValueError(f"{self.path}: line {number} is not a cache record ({error})") from error
        self._handle = open(self.path, "ab")
        self._lock = threading.Lock()

    def _repair_torn_tail(self) -> None:
        if not self.path.exists() or self.path.stat().st_size == 0:
            return
        with open(self.path, "r+b") as handle:
            handle.seek(-1, os.SEEK_END)
            if handle.read(1) == b"\n":
                return
            data = handle.seek(0) or handle.read()
            keep = data.rfind(b"\n") + 1
            log.warning(
                "%s: dropping a torn last record (%d bytes) left by an interrupted run", self.path, len(data) - keep
            )
            handle.truncate(keep)
            os.fsync(handle.fileno())

    def get(self, key: str) -> dict | None:
        return self.records.get(key)

    def put(self, record: dict) -> None:
        """Append a record (it must have a "key") and make it durable before returning. Thread-safe."""
        line = (json.dumps(record, ensure_ascii=False, sort_keys=True) + "\n").encode()
        with self._lock:
            self._handle.write(line)
            self._handle.flush()
            os.fsync(self._handle.fileno())
            self.records[record["key"]] = record

    def __len__(self) -> int:
        return len(self.records)

    def close(self) -> None:
        self._handle.close()

    def __enter__(self) -> "AnswerCache":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
