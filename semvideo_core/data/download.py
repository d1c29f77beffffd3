"""Resumable HTTP(S) downloads with the standard library, and sha256 manifests of the fetched files.

A download writes to `<dest>.part` and resumes it with an HTTP Range request after an interruption, so a multi-GB
file cut off at 90 % does not start over. Only a complete file whose digest checks out is renamed to `dest`.
"""

from __future__ import annotations

import errno
import hashlib
import http.client
import socket
import time
import urllib.request
from pathlib import Path
from urllib.error import HTTPError, URLError

from tqdm import tqdm

from ..io.atomic import atomic_output, publish
from ..retry import backoff_delays

# Errors of a working network that a later attempt may not meet again.
_TRANSIENT_ERRORS = (ConnectionError, TimeoutError, http.client.HTTPException)
# Errors that say there is no route to the host at all: retrying only delays the advice to fetch by hand.
_UNREACHABLE_ERRNOS = {errno.ECONNREFUSED, errno.ENETUNREACH, errno.EHOSTUNREACH, errno.ENETDOWN, errno.EHOSTDOWN}


class DownloadError(RuntimeError):
    """A file could not be fetched; the message says which and what the user can do about it."""


class _BadResponse(ConnectionError):
    """A response that a new attempt may fix: a body cut short, or bytes from another offset than asked for."""


def download_file(
    url: str,
    dest: Path,
    expected_sha256: str | None = None,
    timeout: float = 60.0,
    retries: int = 3,
    chunk_bytes: int = 1 << 20,
    backoff_s: float = 1.0,
) -> str:
    """Download `url` to `dest` and return its sha256 hex digest.

    Bytes go to `dest` + '.part'; an existing .part is resumed with a Range request (a server that answers 200
    instead of 206 is read from the start). Connection resets, timeouts, truncated bodies and 5xx answers are retried
    `retries` times, waiting `backoff_s`, 2 `backoff_s`, 4 `backoff_s`, ... and resuming each time. A digest that
    differs from `expected_sha256` deletes the .part. 401/403/404 and an unreachable host fail at once, with the
    advice to fetch the file by hand and place it at `dest`.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    last_error: BaseException | None = None
    for delay in backoff_delays(retries + 1, backoff_s):
        time.sleep(delay)
        try:
            _fetch_into(url, part, timeout, chunk_bytes)
            break
        except HTTPError as error:
            error.close()
            if error.code < 500:
                raise DownloadError(_http_error_message(url, dest, error.code)) from error
            last_error = error
        except URLError as error:
            if _is_unreachable(error.reason):
                raise DownloadError(_unreachable_message(url, dest, error.reason)) from error
            if not isinstance(error.reason, _TRANSIENT_ERRORS):
                raise DownloadError(f"{url}: {error.reason}") from error
            last_error = error
        except _TRANSIENT_ERRORS as error:
            last_error = error
        except OSError as error:  # e.g. a TLS failure, or a full disk while writing the .part
            raise DownloadError(f"{url}: {error}") from error
    else:
        kept = f"{part} is kept for the next run to resume" if part.exists() else "no partial file is kept"
        raise DownloadError(f"{url}: failed after {retries + 1} attempts ({last_error}); {kept}") from last_error

    digest = sha256_file(part, chunk_bytes)
    expected = expected_sha256.strip().lower() if expected_sha256 is not None else None
    if expected is not None and digest != expected:
        part.unlink()
        raise DownloadError(
            f"{url}: sha256 mismatch, expected {expected} but got {digest}; "
            f"the download was deleted (the file on the server may have changed, or it was corrupted in transit)"
        )
    publish(part, dest)
    return digest


def _fetch_into(url: str, part: Path, timeout: float, chunk_bytes: int) -> None:
    """One attempt: append the rest of `url` to `part` (or rewrite it); raise on any failure."""
    offset = part.stat().st_size if part.exists() else 0
    headers = {"Range": f"bytes={offset}-"} if offset else {}
    try:
        response = urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout)
    except HTTPError as error:
        if error.code == 416 and offset:
            # Nothing left after `offset`: either the .part is already whole (a run died before renaming it) or the
            # file on the server shrank, in which case only a fresh start helps.
            complete = error.headers.get("Content-Range", "") == f"bytes */{offset}"
            error.close()
            if complete:
                return
            part.unlink()
            return _fetch_into(url, part, timeout, chunk_bytes)
        raise
    with response:
        start, total = _content_range(response.headers.get("Content-Range"))
        if offset and response.status != 206:
            offset = 0  # the server ignored the Range header: its body is the whole file
        elif offset and start != offset:
            part.unlink()
            raise _BadResponse(f"asked for bytes from {offset}, the server sent them from {start}; starting over")
        length = response.headers.get("Content-Length")
        if total is None and length is not None:
            total = offset + int(length)
        with (
            open(part, "ab" if offset else "wb") as sink,
            tqdm(total=total, initial=offset, unit="B", unit_scale=True, unit_divisor=1024, desc=part.stem) as bar,
        ):
            while chunk := response.read(chunk_bytes):
                sink.write(chunk)
                bar.update(len(chunk))
    received = part.stat().st_size
    if total is not None and received < total:
        raise _BadResponse(f"connection closed after {received} of {total} bytes")


def _content_range(header: str | None) -> tuple[int | None, int | None]:
    """(first byte, total size) of a `Content-Range: bytes first-last/total` header; None for what it lacks."""
    if not header or not header.startswith("bytes "):
        return None, None
    span, _, size = header[len("bytes ") :].partition("/")
    first = span.split("-")[0]
    return (int(first) if first.isdigit() else None), (int(size) if size.isdigit() else None)


def _is_unreachable(reason: object) -> bool:
    return isinstance(reason, socket.gaierror) or (isinstance(reason, OSError) and reason.errno in _UNREACHABLE_ERRNOS)


def _http_error_message(url: str, dest: Path, code: int) -> str:
    by_hand = f"download it by hand (e.g. in a browser) and place it at {dest}"
    if code in (401, 403):
        return f"{url}: access refused (HTTP {code}); the site needs a login or accepted data-use terms; {by_hand}"
    if code == 404:
        return f"{url}: not found (HTTP 404); the file is missing or has moved; {by_hand}"
    return f"{url}: the server answered HTTP {code}; {by_hand}"


def _unreachable_message(url: str, dest: Path, reason: object) -> str:
    return (
        f"{url}: cannot reach the host ({reason}); there is no network here or the host is down; "
        f"download the file by hand on a machine with network access and place it at {dest}"
    )


def sha256_file(path: Path, chunk_bytes: int = 1 << 20) -> str:
    """Hex sha256 digest of a file, read in chunks so that large files need little memory."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(chunk_bytes):
            digest.update(chunk)
    return digest.hexdigest()


def write_checksums(paths: list[Path], root: Path, manifest: Path) -> None:
    """Atomically write a sha256sum-format manifest: one "<hex>  <path relative to root>" line per file, sorted by path.

    `sha256sum -c manifest` run inside `root` checks it too.
    """
    root_abs = Path(root).resolve()
    entries = []
    for path in paths:
        path_abs = Path(path).resolve()
        if not path_abs.is_relative_to(root_abs):
            raise ValueError(f"{manifest}: {path} is not inside the manifest root {root}")
        entries.append((path_abs.relative_to(root_abs).as_posix(), sha256_file(path_abs)))
    lines = [f"{digest}  {relative}\n" for relative, digest in sorted(entries)]
    with atomic_output(manifest) as tmp:
        tmp.write_text("".join(lines), encoding="utf-8")


def verify_checksums(manifest: Path, root: Path) -> list[str]:
    """Relative paths listed in `manifest` whose file under `root` is missing or has a different digest."""
    bad = []
    for number, line in enumerate(Path(manifest).read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        digest, separator, relative = line.partition("  ")
        if not separator or len(digest) != 64:
            raise ValueError(f"{manifest}, line {number}: expected '<sha256 hex>  <path>', got {line!r}")
        path = Path(root) / relative
        if not path.is_file() or sha256_file(path) != digest.lower():
            bad.append(relative)
    return bad
