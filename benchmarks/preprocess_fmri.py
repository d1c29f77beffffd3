"""Preprocessing throughput on a CC2017-sized subject, beside the raw read speed of the same files.

    python benchmarks/preprocess_fmri.py [--train 3] [--test 1] [--test-reps 8] [--workers 1] [--dir DIR]

Builds CIFTI runs of 91,282 grayordinates (59,412 cortical vertices + 31,870 subcortical voxels) x 245 volumes,
as in CC2017, with fewer runs than the real 86 per subject but the same train/test mix (36 training runs read
twice, 50 test runs once), then times (1) a plain sequential read of every file and (2) `preprocess_subject` in a
child process whose peak memory is reported: once with the files evicted from the page cache (read from disk),
once with them cached. Target (issue 3): throughput >= half the raw read speed, peak memory < 3 GB.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from nibabel.cifti2 import BrainModelAxis

from semvideo_core.data import cc2017_layout as layout
from semvideo_core.data.cifti import MNI_2MM_AFFINE, MNI_2MM_SHAPE, write_dtseries

SURFACE = 32492
CORTEX = (29696, 29716)
SUBCORTICAL = 31870
VOLUMES = 245

CHILD = """
import sys, time, json
from functools import partial
from semvideo_core.data import cc2017_layout as layout
from semvideo_core.data.cifti import cortex_columns
from semvideo_core.data.preprocess import PreprocessConfig, preprocess_subject
raw, n_train, n_test, test_reps, out = sys.argv[1], *map(int, sys.argv[2:5]), sys.argv[5]
runs = layout.subject_runs(raw, 1, n_train, n_test, 2, test_reps)
config = PreprocessConfig(trim={245: (1, 4), 246: (2, 4)}, selection="top_k", top_k=13000)
import numpy as np
from semvideo_core.data.preprocess import detrend_zscore, split_half_correlation
start = time.perf_counter()  # one-time cost per process: load (or compile) the numba kernels
detrend_zscore(np.random.rand(240, 4).astype(np.float32), 4)
split_half_correlation(np.random.rand(240, 4).astype(np.float32), np.random.rand(240, 4).astype(np.float32), 4)
jit = time.perf_counter() - start
start = time.perf_counter()
preprocess_subject(runs, partial(cortex_columns, expected=59412), config, out, workers=int(sys.argv[6]))
print(json.dumps({"seconds": time.perf_counter() - start, "jit": jit}))
"""


def brain_models() -> BrainModelAxis:
    rng = np.random.default_rng(0)
    left = BrainModelAxis.from_surface(
        np.sort(rng.choice(SURFACE, CORTEX[0], replace=False)), SURFACE, name="CortexLeft"
    )
    right = BrainModelAxis.from_surface(
        np.sort(rng.choice(SURFACE, CORTEX[1], replace=False)), SURFACE, name="CortexRight"
    )
    mask = np.zeros(MNI_2MM_SHAPE, dtype=bool)
    mask.flat[np.sort(rng.choice(mask.size, SUBCORTICAL, replace=False))] = True
    return left + right + BrainModelAxis.from_mask(mask, name="thalamus_left", affine=MNI_2MM_AFFINE)


def write_subject(raw: Path, n_train: int, n_test: int, test_reps: int) -> list[Path]:
    models = brain_models()
    rng = np.random.default_rng(1)
    signal = rng.normal(size=(240, len(models))).astype(np.float32)
    paths = []
    for run in layout.runs(n_train, n_test):
        for rep in range(1, (2 if run.split == "train" else test_reps) + 1):
            data = rng.normal(size=(VOLUMES, len(models))).astype(np.float32) * 100 + 10000
            data[1:241, :20000] += signal[:, :20000] * 60
            path = layout.cifti_path(raw, 1, run, rep)
            write_dtseries(path, data, models, tr=2.0)
            paths.append(path)
    return paths


def evict(paths: list[Path]) -> None:
    """Drop the files from the page cache (POSIX_FADV_DONTNEED), so the next read comes from the disk."""
    for path in paths:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def sequential_read_mb_s(paths: list[Path]) -> float:
    total, start = 0, time.perf_counter()
    for path in paths:
        with open(path, "rb", buffering=0) as handle:
            while chunk := handle.read(16 << 20):
                total += len(chunk)
    return total / 1e6 / (time.perf_counter() - start)


def preprocess_seconds(raw: Path, args, out: Path) -> tuple[float, float]:
    """Wall time, kernel load time and peak memory (MB) of preprocess_subject, run in a child process."""
    command = [
        sys.executable,
        "-c",
        CHILD,
        str(raw),
        str(args.train),
        str(args.test),
        str(args.test_reps),
        str(out),
        str(args.workers),
    ]
    out.unlink(missing_ok=True)  # as Snakemake does before a job: freeing the old file's blocks is not timed
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    result = subprocess.run(command, check=True, capture_output=True, text=True)
    peak_mb = max(before, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss) / 1024
    timing = json.loads(result.stdout.strip().splitlines()[-1])
    return timing["seconds"], timing["jit"], peak_mb


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train", type=int, default=3, help="training movies (2 presentations each)")
    parser.add_argument("--test", type=int, default=1, help="test movies")
    parser.add_argument("--test-reps", type=int, default=8, help="presentations of each test movie")
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        help="numba threads of preprocess_subject (the reading thread runs beside them)",
    )
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per condition (the median is printed)")
    parser.add_argument("--dir", type=Path, help="where to build the files (default: a temporary folder)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(dir=args.dir) as scratch:
        raw = Path(scratch) / "raw"
        paths = write_subject(raw, args.train, args.test, args.test_reps)
        os.sync()  # finish writing back the new files, or their writeback competes with the timed reads
        size_mb = sum(p.stat().st_size for p in paths) / 1e6
        out = Path(scratch) / "subject1.h5"
        print(f"machine: {platform.machine()}, {os.cpu_count()} cores; preprocess_subject with {args.workers} threads")
        print(
            f"runs: {len(paths)} x {VOLUMES} volumes x 91,282 grayordinates = {size_mb:.0f} MB of CIFTI "
            f"({args.train} training movies x 2, {args.test} test movies x {args.test_reps}; training runs are "
            f"read twice: selection, then output)"
        )
        for cache in ("cold", "warm"):
            reads, runs = [], []
            for _ in range(args.repeats):  # interleaved, so drifts of the machine hit both alike
                if cache == "cold":
                    evict(paths)
                reads.append(sequential_read_mb_s(paths))
                if cache == "cold":
                    evict(paths)
                runs.append(preprocess_seconds(raw, args, out))
            read_speed = statistics.median(reads)
            seconds = statistics.median(r[0] for r in runs)
            jit, peak_mb = max(r[1] for r in runs), max(r[2] for r in runs)
            throughput = size_mb / seconds
            print(
                f"{cache} page cache (median of {args.repeats}): raw sequential read {read_speed:.0f} MB/s; "
                f"preprocess_subject {seconds:.2f} s ({seconds / len(paths):.3f} s per run) = {throughput:.0f} MB/s, "
                f"{throughput / read_speed:.0%} of raw read (target >= 50%); peak memory {peak_mb:.0f} MB "
                f"(target < 3000 MB); kernel load/compile {jit:.2f} s once per process, not counted"
            )


if __name__ == "__main__":
    main()
