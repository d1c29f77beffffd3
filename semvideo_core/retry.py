"""One retry schedule for everything that talks to a server (downloads, S3, the captioning MLLM): exponential
backoff, capped, with optional full jitter (a uniform draw below the cap, so that many clients retrying at once
spread out instead of hammering the server in step)."""

from __future__ import annotations

import random
from collections.abc import Iterator


def backoff_delays(
    attempts: int, base_s: float, max_s: float = float("inf"), jitter: bool = False, rng: random.Random | None = None
) -> Iterator[float]:
    """Seconds to wait before each of `attempts` tries: 0 before the first, then base_s, 2 base_s, 4 base_s, ...
    capped at max_s (with jitter: a uniform draw in [0, that])."""
    draw = rng or random
    for attempt in range(attempts):
        if attempt == 0:
            yield 0.0
            continue
        delay = min(max_s, base_s * 2 ** (attempt - 1))
        yield draw.uniform(0, delay) if jitter else delay
