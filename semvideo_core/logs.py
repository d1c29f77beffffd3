"""Send a job's logging, warnings and progress bars to its log file."""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

log = logging.getLogger(__name__)


def _exit_on_sigterm(signum, frame):
    # Python's default for SIGTERM ends the process at once, running no `finally`: a job stopped at a cluster's time
    # limit or by scancel would leave its half-written temporaries behind. As an exception, every cleanup runs.
    raise SystemExit(128 + signum)


@contextlib.contextmanager
def log_to_file(path: str | Path, threads: int | None = None) -> Iterator[None]:
    """Route stderr (tqdm writes there), logging and uncaught errors of the block to `path`. The first and last
    lines record when the job ran and on how many threads (`job started at <unix time> on <n> threads`), so that a
    run's actual concurrency can be checked against --cores. Within the block SIGTERM raises SystemExit (exit status
    143), so that the job's `finally` blocks run when SLURM stops it."""
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
        main_thread = threading.current_thread() is threading.main_thread()  # only it may set a handler
        previous_sigterm = signal.signal(signal.SIGTERM, _exit_on_sigterm) if main_thread else None
        try:
            yield
        except BaseException:
            log.exception("job failed")
            raise
        finally:
            if main_thread:  # None: a handler set outside Python; the default is the nearest we can restore
                signal.signal(signal.SIGTERM, signal.SIG_DFL if previous_sigterm is None else previous_sigterm)
            log.info("job ended at %.6f", time.time())
            root.removeHandler(handler)
            root.setLevel(previous_level)
