"""Keep a job to the threads its rule books. torch, OpenCV and the BLAS / OpenMP libraries under numpy and
scikit-learn each start a pool as wide as the machine; a one-thread job would burst onto every core and slow the
job beside it (on a cluster node, onto cores its allocation does not own)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import cv2
import torch
from threadpoolctl import threadpool_limits


@contextlib.contextmanager
def confine_threads(threads: int) -> Iterator[None]:
    """Within the block, torch's intra-op pool, OpenCV's pool and every BLAS / OpenMP pool use `threads` threads."""
    if threads < 1:
        raise ValueError(f"threads must be >= 1, got {threads}")
    previous_torch, previous_cv2 = torch.get_num_threads(), cv2.getNumThreads()
    torch.set_num_threads(threads)
    cv2.setNumThreads(threads)
    try:
        with threadpool_limits(limits=threads):
            yield
    finally:
        torch.set_num_threads(previous_torch)
        cv2.setNumThreads(previous_cv2)
