"""Start an OpenAI-compatible server (`vllm serve`) for the length of a job: bound to 127.0.0.1 on a free port,
waited for on its /health endpoint, stopped afterwards (SIGTERM to its process group, then SIGKILL)."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

log = logging.getLogger(__name__)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return False


@contextlib.contextmanager
def launched_server(
    command: list[str], fields: dict, log_path: str | Path, startup_timeout_s: float = 1200.0, port: int = 0
) -> Iterator[str]:
    """Run `command` (str.format'ed with `fields` plus {host} and {port}) and yield its base URL once /health
    answers 200. The server's output goes to `log_path`; an early exit or a timeout raises with its last lines."""
    port = port or free_port()
    argv = [part.format(host="127.0.0.1", port=port, **fields) for part in command]
    base = f"http://127.0.0.1:{port}"
    log_path = Path(log_path)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log.info("starting %s (output in %s)", " ".join(argv), log_path)
    with open(log_path, "ab") as output:
        process = subprocess.Popen(argv, stdout=output, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + startup_timeout_s
        while not _healthy(f"{base}/health"):
            if process.poll() is not None:
                raise RuntimeError(
                    f"the server exited with code {process.returncode} before it was ready:\n{_tail(log_path)}"
                )
            if time.monotonic() > deadline:
                raise TimeoutError(f"the server was not healthy after {startup_timeout_s:.0f} s:\n{_tail(log_path)}")
            time.sleep(0.5)
        log.info("server ready at %s after %.0f s", base, startup_timeout_s - (deadline - time.monotonic()))
        yield f"{base}/v1"
    finally:
        _stop(process)


def _stop(process: subprocess.Popen, grace_s: float = 30.0) -> None:
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(grace_s)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    log.info("server stopped")


def _tail(path: Path, lines: int = 20) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
