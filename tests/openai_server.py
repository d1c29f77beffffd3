"""A small OpenAI-compatible chat-completions server for the tests and the benchmark, on 127.0.0.1.

It speaks the part of vLLM's HTTP API that SemMiner uses (GET /health, GET /v1/models, POST /v1/chat/completions)
and follows a script: a fixed latency, 5xx bursts, hangs past the client's timeout, over-long stage-1 answers,
malformed or empty bodies, clips that always fail. Scripted faults are counted per request tag, which SemMiner
sends as `X-Request-Id: semminer/{level}/{clip_id}/...`. Answers are a pure function of the request (prompt text
and images), so an interrupted-and-resumed run can be compared with an uninterrupted one, and every request is
recorded for the tests to inspect.

    python -m tests.openai_server --port 8000 --model demo-vl [--latency 0.2]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

WORDS = "red blue green small large round square circle ball cube drifts spins slides bounces over under".split()


@dataclass
class Script:
    """Faults are keyed by clip id (every level) or "{level}/{clip_id}"; the number is how many of that key's
    first requests get the fault ("always_fail" clips fail every time)."""

    latency_s: float = 0.0
    fail_5xx: dict[str, int] = field(default_factory=dict)
    hang: dict[str, int] = field(default_factory=dict)
    hang_s: float = 3.0
    malformed: dict[str, int] = field(default_factory=dict)
    empty: dict[str, int] = field(default_factory=dict)
    long_basic: dict[str, int] = field(default_factory=dict)  # stage-1 answers of 30 words
    always_fail: set[str] = field(default_factory=set)


@dataclass
class Request:
    level: str
    clip_id: str
    prompt: str  # text of the last user turn
    n_images: int
    n_videos: int
    turns: int
    outcome: str  # ok, 5xx, hang, malformed, empty


def _answer(level: str, prompt: str, media: list[str], turns: int, long: bool) -> str:
    """Deterministic words drawn from a hash of the request."""
    digest = hashlib.sha256("\n".join([level, prompt, *media]).encode()).digest()
    words = [WORDS[b % len(WORDS)] for b in digest]
    if level == "basic":
        return " ".join(words[:30]) + "." if long else "A " + " ".join(words[:9]) + "."
    return f"The {level} view: " + " ".join(words[:16]) + "."


class FakeVLLM(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, model: str = "test-vl", script: Script | None = None, port: int = 0, api_key: str | None = None):
        super().__init__(("127.0.0.1", port), _Handler)
        self.model, self.script, self.api_key = model, script or Script(), api_key
        self.requests: list[Request] = []
        self.counts: Counter = Counter()
        self.lock = threading.Lock()
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1"

    def start(self) -> "FakeVLLM":
        self._thread = threading.Thread(target=self.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.shutdown()
        self.server_close()

    def __enter__(self) -> "FakeVLLM":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def completed(self, level: str | None = None) -> list[Request]:
        """Requests answered in full, optionally of one level."""
        with self.lock:
            return [r for r in self.requests if r.outcome == "ok" and (level is None or r.level == level)]

    def _fault(self, kind: dict[str, int], level: str, clip_id: str) -> bool:
        for key in (f"{level}/{clip_id}", clip_id):
            if key in kind and self.counts[(level, clip_id)] <= kind[key]:
                return True
        return False


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as clients pool connections
    disable_nagle_algorithm = True  # headers and body go out as separate writes: no 40-ms delayed-ACK stall
    server: FakeVLLM

    def log_message(self, *args) -> None:  # quiet
        pass

    def _send(self, status: int, body: bytes, content_type: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        if self.path != "/health" and not self._authorised():
            return
        if self.path == "/health":
            self._send(200, b"")
        elif self.path == "/v1/models":
            self._send(
                200, json.dumps({"object": "list", "data": [{"id": self.server.model, "object": "model"}]}).encode()
            )
        else:
            self._send(404, b'{"error": "not found"}')

    def _authorised(self) -> bool:
        if self.server.api_key is None or self.headers.get("Authorization") == f"Bearer {self.server.api_key}":
            return True
        self._send(401, b'{"error": {"message": "invalid API key"}}')
        return False

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
        if not self._authorised():
            return
        if self.path != "/v1/chat/completions":
            return self._send(404, b'{"error": "not found"}')
        if body.get("model") != self.server.model:
            return self._send(404, json.dumps({"error": {"message": f"model {body.get('model')} not found"}}).encode())
        _, level, clip_id = (self.headers.get("X-Request-Id", "semminer/unknown/unknown").split("/") + ["", ""])[:3]
        messages = body["messages"]
        last = messages[-1]["content"]
        parts = last if isinstance(last, list) else [{"type": "text", "text": last}]
        prompt = " ".join(p["text"] for p in parts if p["type"] == "text")
        first = messages[0]["content"]
        media = [p.get("image_url", p.get("video_url", {})).get("url", "") for p in first if p["type"] != "text"]
        n_images = sum(p["type"] == "image_url" for p in first)
        script = self.server.script
        with self.server.lock:
            self.server.counts[(level, clip_id)] += 1
            fault = next(
                (
                    name
                    for name in ("fail_5xx", "hang", "malformed", "empty", "long_basic")
                    if self.server._fault(getattr(script, name), level, clip_id)
                ),
                None,
            )
        time.sleep(script.latency_s)
        outcome = "ok"
        if clip_id in script.always_fail or fault == "fail_5xx":
            outcome = "5xx"
            self._send(503, b'{"error": {"message": "scripted overload"}}')
        elif fault == "hang":
            outcome = "hang"
            self._record(Request(level, clip_id, prompt, n_images, len(media) - n_images, len(messages), outcome))
            time.sleep(script.hang_s)  # the client has given up by now and closed the connection
            self._send(200, b'{"error": "too late"}')
            return
        elif fault == "malformed":
            outcome = "malformed"
            self._send(200, b'{"id": "x", "choices": [{"mess')
        else:
            outcome = "empty" if fault == "empty" else "ok"
            text = "" if fault == "empty" else _answer(level, prompt, media, len(messages), fault == "long_basic")
            reply = {
                "id": f"chatcmpl-{level}-{clip_id}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": self.server.model,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
            }
            self._send(200, json.dumps(reply).encode())
        self._record(Request(level, clip_id, prompt, n_images, len(media) - n_images, len(messages), outcome))

    def _record(self, request: Request) -> None:
        with self.server.lock:
            self.server.requests.append(request)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--model", default="test-vl")
    parser.add_argument("--latency", type=float, default=0.0)
    parser.add_argument("--startup-delay", type=float, default=0.0, help="seconds before the port opens")
    args = parser.parse_args()
    time.sleep(args.startup_delay)
    server = FakeVLLM(args.model, Script(latency_s=args.latency), port=args.port)
    print(f"serving {args.model} on {server.base_url}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
