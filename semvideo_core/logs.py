"""Send a job's logging, warnings and progress bars to its log file."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator
from pathlib import Path

log = logging.getLogger(__name__)


@contextlib.contextmanager
def log_to_file(path: str | Path, threads: int | None = None) -> Iterator[None]:
    """Route stderr (tqdm writes there), logging and uncaught errors of the block to `path`. The first and last
    lines record when the job ran and on how many threads (`job started at <unix time> on <n> threads`), so that a
    run's actual concurrency can be checked against --cores."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", buffering=1, encoding="utf-8") as handle, contextlib.redirect_stderr(handle):
        handler = logging.StreamHandler(handle)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root = logging.getLogger()
        root.addHandler(handler)
        previous_level = root.level
        root.setLevel(logging.INFO)
        log.info("job started at %.6f on %s threads", time.time(), threads)
        try:
            yield
        except BaseException:
            log.exception("job failed")
            raise
        finally:
            log.info("job ended at %.6f", time.time())
            root.removeHandler(handler)
            root.setLevel(previous_level)
