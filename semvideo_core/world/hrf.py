"""The SPM canonical haemodynamic response function (double gamma, spm_hrf defaults)."""

from __future__ import annotations

import numpy as np
from scipy.stats import gamma


def canonical_hrf(
    dt: float,
    length: float = 32.0,
    peak_delay: float = 6.0,
    undershoot_delay: float = 16.0,
    peak_dispersion: float = 1.0,
    undershoot_dispersion: float = 1.0,
    ratio: float = 6.0,
) -> np.ndarray:
    """HRF sampled every `dt` seconds from 0 to `length` inclusive, normalised to unit sum as SPM does.

    Gamma densities with shape delay/dispersion and scale dispersion: the response peaks at
    (peak_delay - peak_dispersion) = 5 s and undershoots around 15 s with 1/ratio of the peak density.
    """
    t = np.arange(round(length / dt) + 1) * dt
    response = gamma.pdf(t, peak_delay / peak_dispersion, scale=peak_dispersion)
    response -= gamma.pdf(t, undershoot_delay / undershoot_dispersion, scale=undershoot_dispersion) / ratio
    return response / response.sum()
