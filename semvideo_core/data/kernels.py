"""Fused per-vertex kernels of the preprocessing (numba): one sweep over each vertex's time series.

Preprocessing is bound by memory traffic, not arithmetic: the numpy formulation passes over every run several
times (copy, centre, project, subtract, reduce, divide). Here each vertex's series (about 1 KB) is read once into
cache and every statistic is accumulated in float64 there; vertices run in parallel threads.

Both kernels take x as [V, T_run] (one C-contiguous row per vertex, float32: the order of the CIFTI file on disk),
the first volume `start` of the T-volume window to use, and the orthonormal trend basis [K, T] (first row constant), and flag rows holding NaN or infinite values instead of raising. fastmath lets the
float64 sums vectorise (reassociated); NaN is caught by the isfinite check on the mean, before any fast-math sum.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

# Fast-math without the no-NaN / no-inf assumptions, so the isfinite checks stay.
FAST = {"reassoc", "contract", "nsz", "arcp"}


@njit(cache=True, fastmath=FAST, inline="always", nogil=True)
def _centre_and_project(x, start, basis, coefficients):
    """Mean, max |x| and the trend coefficients of one centred series x[start:start + T] (coefficients is filled
    in). basis is [K, T]: each coefficient is a contiguous dot product, which vectorises."""
    n_basis, n_time = basis.shape
    mean, peak = 0.0, 0.0
    for t in range(n_time):
        value = np.float64(x[start + t])
        mean += value
        peak = max(peak, abs(value))
    mean /= n_time
    for k in range(n_basis):
        total = 0.0
        for t in range(n_time):
            total += (x[start + t] - mean) * basis[k, t]
        coefficients[k] = total
    return mean, peak


@njit(cache=True, parallel=True, fastmath=FAST, nogil=True)
def detrend_zscore_rows(x, start, basis):
    """x[:, start:start + T] -> (z [T, V] float32, constant [V], nonfinite [V]): trend removed, z-scored (ddof 0).

    z comes out time-major, the layout of the HDF5 outputs, so no transpose follows.
    """
    n_rows = x.shape[0]
    n_basis, n_time = basis.shape
    z = np.zeros((n_time, n_rows), dtype=np.float32)
    constant = np.zeros(n_rows, dtype=np.bool_)
    nonfinite = np.zeros(n_rows, dtype=np.bool_)
    for v in prange(n_rows):
        coefficients = np.empty(n_basis)
        mean, peak = _centre_and_project(x[v], start, basis, coefficients)
        if not np.isfinite(mean):
            nonfinite[v] = True
            continue
        residual = np.empty(n_time)
        for t in range(n_time):
            residual[t] = x[v, start + t] - mean
        for k in range(n_basis):
            for t in range(n_time):
                residual[t] -= coefficients[k] * basis[k, t]
        energy = 0.0
        for t in range(n_time):
            energy += residual[t] * residual[t]
        sd = np.sqrt(energy / n_time)
        if sd <= 1e-6 * max(peak, 1.0):
            constant[v] = True
            continue
        for t in range(n_time):
            z[t, v] = residual[t] / sd
    return z, constant, nonfinite


@njit(cache=True, parallel=True, fastmath=FAST, nogil=True)
def split_half_rows(a, b, start_a, start_b, basis):
    """-> (r [V], constant [V], nonfinite [V]): correlation of the two detrended series of every row.

    With P the projection off the trend basis, <Pa, Pb> = <a, b> - <B'a, B'b> on centred series, so the
    detrended series are never formed.
    """
    n_rows = a.shape[0]
    n_basis, n_time = basis.shape
    r = np.zeros(n_rows)
    constant = np.zeros(n_rows, dtype=np.bool_)
    nonfinite = np.zeros(n_rows, dtype=np.bool_)
    for v in prange(n_rows):
        coefficients_a, coefficients_b = np.empty(n_basis), np.empty(n_basis)
        mean_a, _ = _centre_and_project(a[v], start_a, basis, coefficients_a)
        mean_b, _ = _centre_and_project(b[v], start_b, basis, coefficients_b)
        if not (np.isfinite(mean_a) and np.isfinite(mean_b)):
            nonfinite[v] = True
            continue
        energy_a, energy_b, cross = 0.0, 0.0, 0.0
        for t in range(n_time):
            centred_a, centred_b = a[v, start_a + t] - mean_a, b[v, start_b + t] - mean_b
            energy_a += centred_a * centred_a
            energy_b += centred_b * centred_b
            cross += centred_a * centred_b
        var_a, var_b = energy_a, energy_b
        for k in range(n_basis):
            var_a -= coefficients_a[k] * coefficients_a[k]
            var_b -= coefficients_b[k] * coefficients_b[k]
            cross -= coefficients_a[k] * coefficients_b[k]
        # No variance beyond the trend (or none at all): flat in one presentation.
        if var_a <= 1e-12 * max(energy_a, 1e-300) or var_b <= 1e-12 * max(energy_b, 1e-300):
            constant[v] = True
            continue
        r[v] = cross / np.sqrt(var_a * var_b)
    return r, constant, nonfinite


def trend_basis(n_time: int, order: int) -> np.ndarray:
    """[order + 1, T] orthonormal polynomial basis on the run (Legendre, then QR), its first row constant."""
    t = np.linspace(-1.0, 1.0, n_time)
    basis, _ = np.linalg.qr(np.polynomial.legendre.legvander(t, order))
    return np.ascontiguousarray(basis.T)
