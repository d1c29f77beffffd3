"""SemMiner throughput against an OpenAI-compatible server with a fixed latency per request.

    python benchmarks/semminer_throughput.py [--latency 0.2] [--in-flight 1 8 32] [--frames 6] [--size 224]

The server (tests/openai_server.py) runs in its own process, as vLLM would, and answers every request after
`latency` seconds. Each clip costs 4 requests (the basic summary, then anchor, motion and holistic at once), so
with k requests in flight the ideal rate is k / latency / 4 clips per second. Frames are smooth synthetic images
sent as JPEG at the configured size, so encoding and request sizes are realistic. Every run starts from an empty
cache (each answer is still fsynced). Target (issue 4): at least 80% of the ideal rate at 32 in flight on 2 cores.
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import cv2
import h5py
import numpy as np

from semvideo_core.semminer.frames import FrameSettings
from semvideo_core.semminer.miner import MinerConfig, mine_captions
from semvideo_core.semminer.server import launched_server

REPO = Path(__file__).resolve().parents[1]


def write_clips(path: Path, n_clips: int, size: int, frames: int) -> None:
    """Smooth random frames (upsampled 6x6 noise), whose JPEGs have the size of natural images, not of noise."""
    rng = np.random.default_rng(0)
    with h5py.File(path, "w") as h5:
        data = h5.create_dataset("frames", (n_clips, frames, size, size, 3), dtype=np.uint8)
        for i in range(n_clips):
            coarse = rng.integers(0, 256, size=(frames, 6, 6, 3), dtype=np.uint8)
            data[i] = np.stack([cv2.resize(f, (size, size), interpolation=cv2.INTER_CUBIC) for f in coarse])
        h5.create_dataset("clip_id", data=[f"seg1_{i + 1}" for i in range(n_clips)], dtype=h5py.string_dtype())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--latency", type=float, default=0.2, help="seconds the server takes per request")
    parser.add_argument("--in-flight", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--frames", type=int, default=6, help="frames sent per clip")
    parser.add_argument("--size", type=int, default=224, help="side of the frames sent")
    parser.add_argument("--seconds", type=float, default=5.0, help="ideal duration of each run (sets the clip count)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores; server latency {args.latency * 1000:.0f} ms")
    print(
        f"{'in flight':>9} {'clips':>6} {'seconds':>8} {'clips/s':>8} {'ideal':>7} {'of ideal':>9} {'requests/s':>11}"
    )
    command = [sys.executable, str(REPO / "tests" / "openai_server.py"), "--port", "{port}", "--model", "{model}"]
    command += ["--latency", str(args.latency)]
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        with launched_server(command, {"model": "bench-vl"}, scratch / "server.log", startup_timeout_s=60) as url:
            for in_flight in args.in_flight:
                ideal = in_flight / args.latency / 4
                n_clips = max(8, int(ideal * args.seconds))
                clips = scratch / f"clips_{in_flight}.h5"
                write_clips(clips, n_clips, args.size, args.frames)
                frames = FrameSettings(count=args.frames, size=args.size)
                config = MinerConfig(model="bench-vl", base_url=url, in_flight=in_flight, frames=frames)
                start = time.perf_counter()
                mine_captions([clips], config, scratch / f"cache_{in_flight}")
                seconds = time.perf_counter() - start
                rate = n_clips / seconds
                print(
                    f"{in_flight:>9} {n_clips:>6} {seconds:>8.2f} {rate:>8.2f} {ideal:>7.2f} {rate / ideal:>9.0%} "
                    f"{4 * n_clips / seconds:>11.1f}"
                )


if __name__ == "__main__":
    main()
