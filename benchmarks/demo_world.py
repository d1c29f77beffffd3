"""Time the demo world generation and measure its size on disk.

    python benchmarks/demo_world.py [--config config.yaml] [--workers 2] [--keep DIR]

Target (issue 2): under 60 s on 2 CPU cores for the default config.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import tempfile
import time
from pathlib import Path

import yaml

from semvideo_core.world.config import WorldConfig
from semvideo_core.world.generate import generate_world


def size_mb(paths) -> float:
    return sum(p.stat().st_size for p in paths) / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default=Path(__file__).resolve().parents[1] / "config.yaml", type=Path)
    parser.add_argument("--workers", default=2, type=int)
    parser.add_argument("--keep", type=Path, help="write the world here instead of a temporary folder")
    args = parser.parse_args()

    config = WorldConfig.from_dict(yaml.safe_load(args.config.read_text())["demo"]["world"])
    with tempfile.TemporaryDirectory() as scratch:
        out = args.keep or Path(scratch)
        start = time.perf_counter()
        files = generate_world(config, out, workers=args.workers)
        seconds = time.perf_counter() - start
        peak_mb = (
            max(
                resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss,
            )
            / 1024
        )

        n_train = config.train_segments * config.clips_per_segment
        n_test = config.test_segments * config.clips_per_segment
        print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, workers={args.workers}")
        print(
            f"world: {config.n_subjects} subjects, {n_train} training + {n_test} test clips, "
            f"{config.frame_size}px @ {config.fps} fps, {len(files.all())} files"
        )
        print(f"generation time: {seconds:.1f} s (target < 60 s)")
        print(f"peak memory (largest process): {peak_mb:.0f} MB")
        print(
            f"size on disk: {size_mb(files.all()):.1f} MB "
            f"(stimuli {size_mb(files.stimuli):.1f}, CIFTI {size_mb(files.cifti):.1f}, "
            f"captions {size_mb(files.captions.values()):.2f}, ground truth {size_mb([files.ground_truth]):.1f})"
        )


if __name__ == "__main__":
    main()
