"""Resumable downloads against a small HTTP server on 127.0.0.1, and sha256 manifests."""

from __future__ import annotations

import hashlib
import http.server
import random
import socket
import threading
from dataclasses import dataclass, field

import pytest

from semvideo_core.data.download import DownloadError, download_file, verify_checksums, write_checksums

PAYLOAD = random.Random(0).randbytes(300_000)
DIGEST = hashlib.sha256(PAYLOAD).hexdigest()


@dataclass
class ServerState:
    """What the server does (set by each test) and what it saw."""

    status: int | None = None  # answer every request with this error status instead of the payload
    fail_first: int | None = None  # answer the first request with this error status
    cut_first_after: int | None = None  # send only this many body bytes on the first request, then hang up
    ignore_range: bool = False  # always answer 200 with the whole payload
    requests: list[str | None] = field(default_factory=list)  # the Range header of each request


class PayloadHandler(http.server.BaseHTTPRequestHandler):
    """Serves PAYLOAD with `Range: bytes=N-` support; misbehaves as the server's ServerState says."""

    def do_GET(self) -> None:
        state: ServerState = self.server.state  # type: ignore[attr-defined]
        state.requests.append(self.headers.get("Range"))
        first = len(state.requests) == 1
        if state.status is not None or (first and state.fail_first is not None):
            self.send_error(state.status or state.fail_first)
            return
        start = 0
        range_header = self.headers.get("Range")
        if range_header and not state.ignore_range:
            start = int(range_header.removeprefix("bytes=").rstrip("-"))
            if start >= len(PAYLOAD):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(PAYLOAD)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(PAYLOAD) - 1}/{len(PAYLOAD)}")
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(len(PAYLOAD) - start))
        self.end_headers()
        body = PAYLOAD[start:]
        if first and state.cut_first_after is not None:
            body = body[: state.cut_first_after]  # HTTP/1.0: the connection closes after this short body
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass  # keep the test output clean


@pytest.fixture
def server():
    """(state, url) of a threaded HTTP server on an ephemeral loopback port."""
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), PayloadHandler)
    httpd.state = ServerState()  # type: ignore[attr-defined]
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)
    thread.start()
    yield httpd.state, f"http://127.0.0.1:{httpd.server_port}/payload.bin"  # type: ignore[attr-defined]
    httpd.shutdown()
    httpd.server_close()
    thread.join()


def test_full_download_returns_the_digest(server, tmp_path):
    state, url = server
    dest = tmp_path / "sub" / "payload.bin"
    assert download_file(url, dest, expected_sha256=DIGEST.upper(), chunk_bytes=4096) == DIGEST
    assert dest.read_bytes() == PAYLOAD
    assert not (tmp_path / "sub" / "payload.bin.part").exists()
    assert state.requests == [None]


def test_interrupted_download_resumes_with_a_range_request(server, tmp_path):
    state, url = server
    state.cut_first_after = 123_456
    dest = tmp_path / "payload.bin"
    assert download_file(url, dest, expected_sha256=DIGEST, backoff_s=0, chunk_bytes=4096) == DIGEST
    assert dest.read_bytes() == PAYLOAD
    assert state.requests == [None, "bytes=123456-"]


def test_server_ignoring_range_restarts_from_scratch(server, tmp_path):
    state, url = server
    state.cut_first_after = 100_000
    state.ignore_range = True
    dest = tmp_path / "payload.bin"
    assert download_file(url, dest, backoff_s=0) == DIGEST
    assert dest.read_bytes() == PAYLOAD
    assert state.requests == [None, "bytes=100000-"]


def test_complete_part_file_is_finished_without_refetching(server, tmp_path):
    state, url = server
    dest = tmp_path / "payload.bin"
    (tmp_path / "payload.bin.part").write_bytes(PAYLOAD)
    assert download_file(url, dest, expected_sha256=DIGEST) == DIGEST
    assert dest.read_bytes() == PAYLOAD
    assert state.requests == [f"bytes={len(PAYLOAD)}-"]


def test_server_error_is_retried(server, tmp_path):
    state, url = server
    state.fail_first = 503
    dest = tmp_path / "payload.bin"
    assert download_file(url, dest, backoff_s=0) == DIGEST
    assert len(state.requests) == 2


def test_persistent_server_error_gives_up_after_the_retries(server, tmp_path):
    state, url = server
    state.status = 500
    with pytest.raises(DownloadError, match="failed after 3 attempts"):
        download_file(url, tmp_path / "payload.bin", retries=2, backoff_s=0)
    assert len(state.requests) == 3


def test_checksum_mismatch_leaves_nothing(server, tmp_path):
    _, url = server
    dest = tmp_path / "payload.bin"
    with pytest.raises(DownloadError) as caught:
        download_file(url, dest, expected_sha256="0" * 64)
    message = str(caught.value)
    assert url in message and "0" * 64 in message and DIGEST in message
    assert not dest.exists()
    assert not (tmp_path / "payload.bin.part").exists()


@pytest.mark.parametrize(("status", "advice"), [(404, "not found"), (403, "login"), (401, "login")])
def test_missing_or_login_protected_file_fails_at_once(server, tmp_path, status, advice):
    state, url = server
    state.status = status
    dest = tmp_path / "payload.bin"
    with pytest.raises(DownloadError) as caught:
        download_file(url, dest, backoff_s=0)
    message = str(caught.value)
    assert url in message and advice in message and "by hand" in message and str(dest) in message
    assert len(state.requests) == 1
    assert not dest.exists()


def test_unreachable_host_advises_a_manual_download(tmp_path):
    # A bound socket that does not listen: connecting to it is refused, and no other process can take the port.
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{closed.getsockname()[1]}/payload.bin"
        dest = tmp_path / "payload.bin"
        with pytest.raises(DownloadError) as caught:
            download_file(url, dest, timeout=5, backoff_s=0)
    message = str(caught.value)
    assert url in message and "by hand" in message and str(dest) in message
    assert not dest.exists()


def test_checksum_manifest_round_trip_and_detects_changes(tmp_path):
    root = tmp_path / "data"
    files = [root / "b.bin", root / "a" / "x.bin", root / "a" / "y.bin"]
    for i, path in enumerate(files):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(bytes([i]) * 1000)
    manifest = tmp_path / "sha256sums.txt"
    write_checksums(files, root, manifest)

    lines = manifest.read_text().splitlines()
    assert [line.split("  ")[1] for line in lines] == ["a/x.bin", "a/y.bin", "b.bin"]
    assert lines[2] == f"{hashlib.sha256(bytes([0]) * 1000).hexdigest()}  b.bin"
    assert verify_checksums(manifest, root) == []

    files[1].write_bytes(b"changed")
    files[2].unlink()
    assert verify_checksums(manifest, root) == ["a/x.bin", "a/y.bin"]


def test_checksum_manifest_rejects_files_outside_the_root(tmp_path):
    outside = tmp_path / "outside.bin"
    outside.write_bytes(b"x")
    manifest = tmp_path / "sums.txt"
    with pytest.raises(ValueError, match="not inside"):
        write_checksums([outside], tmp_path / "data", manifest)
    assert not manifest.exists()
