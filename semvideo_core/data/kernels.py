"""Fused per-vertex kernels of the preprocessing (numba): one sweep over each vertex's time series.

Preprocessing is bound by memory traffic, not arithmetic: the numpy formulation passes over every run several
times (copy, centre, project, subtract, reduce, divide). Here each vertex's series (about 1 KB) is copied once into
a float64 scratch row that stays in L1 cache, and every step runs there; vertices run in parallel threads, in
chunks that each own one scratch row (no allocation per vertex).

Both kernels take x as [V, T_run] (one C-contiguous row per vertex, float32: the order of the CIFTI file on disk),
the first volume `start` of the T-volume window to use, and the orthonormal trend basis [K, T] (first row constant),
and flag rows holding NaN or infinite values instead of raising. fastmath lets the float64 sums vectorise
(reassociated); NaN is caught by the isfinite check on the mean, before any fast-math sum.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

# Fast-math without the no-NaN / no-inf assumptions, so the isfinite checks stay.
FAST = {"reassoc", "contract", "nsz", "arcp"}
CHUNK = 64  # vertices per parallel task: its [CHUNK, T] float32 tile stays under malloc's mmap threshold


@njit(cache=True, fastmath=FAST, inline="always", nogil=True, error_model="numpy")
def _detrend_into(row, basis, scratch):
    """scratch[:] = row minus its mean and its trend (float64); -> (mean, sum of squares after centring, max |row|).

    basis is [K, T] with orthonormal rows, the first constant, so removing its projections one by one is exact."""
    n_basis, n_time = basis.shape
    mean, peak = 0.0, 0.0
    for t in range(n_time):
        value = np.float64(row[t])
        scratch[t] = value
        mean += value
        peak = max(peak, abs(value))
    mean /= n_time
    energy = 0.0
    for t in range(n_time):
        scratch[t] -= mean
        energy += scratch[t] * scratch[t]
    for k in range(1, n_basis):  # row 0 (constant) is the mean, removed above
        weights = basis[k]
        coefficient = 0.0
        for t in range(n_time):
            coefficient += scratch[t] * weights[t]
        for t in range(n_time):
            scratch[t] -= coefficient * weights[t]
    return mean, energy, peak


@njit(cache=True, fastmath=FAST, inline="always", nogil=True, error_model="numpy")
def _dot(a, b):
    total = 0.0
    for t in range(a.shape[0]):
        total += a[t] * b[t]
    return total


@njit(cache=True, parallel=True, fastmath=FAST, nogil=True, error_model="numpy")
def detrend_zscore_rows(x, start, basis, z):
    """x[:, start:start + T] -> z [T, V] (filled in; float32, may be a strided view), (constant [V],
    nonfinite [V]): trend removed, z-scored (ddof 0); constant and non-finite rows come out as zeros.

    z is time-major, the layout of the HDF5 outputs: each chunk is z-scored into a [CHUNK, T] tile (in L2 cache),
    then written out a time point at a time, CHUNK contiguous values each."""
    n_rows = x.shape[0]
    n_time = basis.shape[1]
    constant = np.zeros(n_rows, dtype=np.bool_)
    nonfinite = np.zeros(n_rows, dtype=np.bool_)
    for chunk in prange((n_rows + CHUNK - 1) // CHUNK):
        scratch = np.empty(n_time)
        tile = np.empty((CHUNK, n_time), dtype=np.float32)
        first, stop = chunk * CHUNK, min(n_rows, (chunk + 1) * CHUNK)
        for v in range(first, stop):
            mean, _, peak = _detrend_into(x[v, start : start + n_time], basis, scratch)
            sd = np.sqrt(_dot(scratch, scratch) / n_time)
            if not np.isfinite(mean):
                nonfinite[v] = True
                sd = 0.0
            elif sd <= 1e-6 * max(peak, 1.0):
                constant[v] = True
                sd = 0.0
            scale = 1.0 / sd if sd > 0.0 else 0.0
            out = tile[v - first]
            for t in range(n_time):
                out[t] = scratch[t] * scale
        for t in range(n_time):
            for v in range(first, stop):
                z[t, v] = tile[v - first, t]
    return constant, nonfinite


@njit(cache=True, parallel=True, fastmath=FAST, nogil=True, error_model="numpy")
def split_half_rows(a, b, start_a, start_b, basis):
    """-> (r [V], constant [V], nonfinite [V]): correlation of the two detrended series of every row."""
    n_rows = a.shape[0]
    n_time = basis.shape[1]
    r = np.zeros(n_rows)
    constant = np.zeros(n_rows, dtype=np.bool_)
    nonfinite = np.zeros(n_rows, dtype=np.bool_)
    for chunk in prange((n_rows + CHUNK - 1) // CHUNK):
        scratch_a, scratch_b = np.empty(n_time), np.empty(n_time)
        for v in range(chunk * CHUNK, min(n_rows, (chunk + 1) * CHUNK)):
            mean_a, energy_a, _ = _detrend_into(a[v, start_a : start_a + n_time], basis, scratch_a)
            mean_b, energy_b, _ = _detrend_into(b[v, start_b : start_b + n_time], basis, scratch_b)
            if not (np.isfinite(mean_a) and np.isfinite(mean_b)):
                nonfinite[v] = True
                continue
            var_a, var_b = _dot(scratch_a, scratch_a), _dot(scratch_b, scratch_b)
            # No variance beyond the trend (or none at all): flat in one presentation.
            if var_a <= 1e-12 * max(energy_a, 1e-300) or var_b <= 1e-12 * max(energy_b, 1e-300):
                constant[v] = True
                continue
            r[v] = _dot(scratch_a, scratch_b) / np.sqrt(var_a * var_b)
    return r, constant, nonfinite


@njit(cache=True, nogil=True)
def compact_rows(x, rows):
    """Move rows `rows` (ascending) of x to its top, in place: x[i] = x[rows[i]]. Each source row lies at or
    below its destination and above every later destination, so no row is overwritten before it is moved."""
    for i in range(rows.shape[0]):
        if rows[i] != i:
            x[i, :] = x[rows[i], :]


def trend_basis(n_time: int, order: int) -> np.ndarray:
    """[order + 1, T] orthonormal polynomial basis on the run (Legendre, then QR), its first row constant."""
    t = np.linspace(-1.0, 1.0, n_time)
    basis, _ = np.linalg.qr(np.polynomial.legendre.legvander(t, order))
    return np.ascontiguousarray(basis.T)
