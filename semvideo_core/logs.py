"""Send a job's logging, warnings and progress bars to its log file."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def log_to_file(path: str | Path) -> Iterator[None]:
    """Route stderr (tqdm writes there), logging and uncaught errors of the block to `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", buffering=1, encoding="utf-8") as handle, contextlib.redirect_stderr(handle):
        handler = logging.StreamHandler(handle)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root = logging.getLogger()
        root.addHandler(handler)
        previous_level = root.level
        root.setLevel(logging.INFO)
        try:
            yield
        except BaseException:
            logging.getLogger(__name__).exception("job failed")
            raise
        finally:
            root.removeHandler(handler)
            root.setLevel(previous_level)
