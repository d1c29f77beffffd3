"""A job's thread pools stay within the threads its rule books (semvideo_core.threads), as the libraries report."""

import cv2
import numpy as np
import pytest
import torch
from threadpoolctl import threadpool_info

from semvideo_core.threads import confine_threads


def test_every_pool_uses_the_booked_threads_inside_the_block_and_is_restored_after():
    before = (torch.get_num_threads(), cv2.getNumThreads(), [p["num_threads"] for p in threadpool_info()])
    np.ones((64, 64)) @ np.ones((64, 64))  # load numpy's BLAS, so that threadpoolctl sees its pool
    assert threadpool_info(), "no BLAS / OpenMP pool found to check"
    with confine_threads(1):
        assert torch.get_num_threads() == 1 and cv2.getNumThreads() == 1
        assert all(pool["num_threads"] == 1 for pool in threadpool_info()), threadpool_info()
    after = (torch.get_num_threads(), cv2.getNumThreads(), [p["num_threads"] for p in threadpool_info()])
    assert after[:2] == before[:2] and after[2][: len(before[2])] == before[2]


def test_zero_threads_is_refused():
    with pytest.raises(ValueError, match="threads must be >= 1"):
        with confine_threads(0):
            pass
