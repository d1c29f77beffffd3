"""The demo world's encoding model: stimulus features -> shared latent -> subject vertices -> HRF -> BOLD + noise.

1. Frame features are z-scored over all movies and projected onto a latent space shared by every subject
   (each feature group weighted to contribute equal variance).
2. The latent time course runs through the SPM canonical HRF at frame rate and is sampled mid-volume every TR.
3. Each subject maps the latent onto its visual vertices with its own random weights; the response of every visual
   vertex is scaled so that signal variance / noise variance over the visual vertices equals the configured SNR.
4. Noise, independent per run: polynomial drift + AR(1) + white noise; non-visual grayordinates carry noise only.

SNR, signal and noise variances are all meant as a user measures them: over a run's movie volumes, with the
run's mean removed, averaged over runs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from nibabel.cifti2 import BrainModelAxis
from scipy.signal import fftconvolve, lfilter

from ..data.cifti import surface_brain_models
from .config import NoiseConfig, WorldConfig
from .features import GROUPS, group_sizes
from .hrf import canonical_hrf

DRIFT_MAX_DEGREE = 3
# Share of the fs_LR surface that carries data (59,412 of 2 x 32,492 vertices in the real data; the rest is medial wall).
SURFACE_COVERAGE = 0.914


def shared_projection(rng: np.random.Generator, grid: int, latent_dim: int) -> np.ndarray:
    """[features, latent]: random weights, each group scaled by 1/sqrt(its size) so the groups weigh the same."""
    sizes = group_sizes(grid)
    scale = np.concatenate([np.full(sizes[g], 1 / np.sqrt(sizes[g])) for g in GROUPS])
    return (rng.standard_normal((len(scale), latent_dim)) * scale[:, None] / np.sqrt(len(GROUPS))).astype(np.float32)


def latent_timecourse(features: np.ndarray, projection: np.ndarray, fps: int, tr: float, n_volumes: int) -> np.ndarray:
    """Frame-rate z-scored features of a whole run [frames, features] -> HRF-convolved latent [volumes, latent]."""
    latent = features @ projection
    hrf = canonical_hrf(1.0 / fps)
    bold = fftconvolve(latent, hrf[:, None], mode="full", axes=0)[: len(latent)]
    frames_per_volume = round(fps * tr)
    mid_volume = np.arange(n_volumes) * frames_per_volume + frames_per_volume // 2
    return bold[mid_volume].astype(np.float32)


@dataclass
class SubjectModel:
    """One simulated subject. Column order follows the CIFTI brain models: left cortex, right cortex, subcortex."""

    number: int
    brain_models: BrainModelAxis
    visual: np.ndarray  # [grayordinates] bool, the true visual vertices
    weights: np.ndarray  # [latent, visual vertices]
    baseline: np.ndarray  # [grayordinates] mean BOLD
    noise_sd: np.ndarray  # [grayordinates]
    signal_sd: np.ndarray  # [grayordinates], 0 outside the visual vertices

    @property
    def n_grayordinates(self) -> int:
        return len(self.visual)


def _subcortical_voxels(count: int) -> dict[str, np.ndarray]:
    """Two small thalamic blocks in the 2-mm MNI grid."""
    halves = {"thalamus_left": (count + 1) // 2, "thalamus_right": count // 2}
    corners = {"thalamus_left": (49, 50, 36), "thalamus_right": (35, 50, 36)}
    voxels = {}
    for name, n in halves.items():
        if n:
            block = np.stack(np.unravel_index(np.arange(n), (6, 6, 6)), axis=1)
            voxels[name] = block + np.array(corners[name])
    return voxels


def build_subject(rng: np.random.Generator, number: int, n_cortical: int, config: WorldConfig) -> SubjectModel:
    n_left = n_cortical // 2
    n_right = n_cortical - n_left
    surface = (int(np.ceil(n_left / SURFACE_COVERAGE)), int(np.ceil(n_right / SURFACE_COVERAGE)))
    left = np.sort(rng.choice(surface[0], n_left, replace=False))
    right = np.sort(rng.choice(surface[1], n_right, replace=False))
    models = surface_brain_models(left, right, surface, _subcortical_voxels(config.subcortical_voxels))
    n_total = len(models)

    # Visual cortex: one contiguous stretch of columns in each hemisphere, as an occipital patch would be.
    visual = np.zeros(n_total, dtype=bool)
    for offset, n_hemi in ((0, n_left), (n_left, n_right)):
        n_visual = round(config.visual_fraction * n_hemi)
        start = int(rng.integers(0, n_hemi - n_visual + 1))
        visual[offset + start : offset + start + n_visual] = True

    baseline = config.baseline * np.exp(rng.normal(0.0, 0.2, n_total))
    noise_sd = baseline * config.noise.percent_of_baseline / 100
    gain = np.zeros(n_total)
    gain[visual] = np.exp(rng.normal(0.0, config.gain_spread, visual.sum()))
    # Normalise so that sum(signal variance) / sum(noise variance) over the visual vertices is exactly the SNR.
    gain[visual] /= np.sqrt(np.sum(gain[visual] ** 2 * noise_sd[visual] ** 2) / np.sum(noise_sd[visual] ** 2))
    signal_sd = gain * np.sqrt(config.snr) * noise_sd
    weights = rng.standard_normal((config.latent_dim, int(visual.sum()))).astype(np.float32)
    return SubjectModel(number, models, visual, weights, baseline, noise_sd, signal_sd)


def subject_signals(
    subject: SubjectModel, latents: dict[str, np.ndarray], movie_rows: dict[str, slice]
) -> dict[str, np.ndarray]:
    """Noise-free stimulus responses per run [volumes, grayordinates], without the baseline.

    Each visual vertex is scaled so that its variance within a run's movie volumes, averaged over runs, is
    `signal_sd**2`: the variance a user measures after taking each run's mean out.
    """
    raw = {name: latent @ subject.weights for name, latent in latents.items()}
    within_run_var = np.mean([raw[name][rows].var(axis=0) for name, rows in movie_rows.items()], axis=0)
    mean = np.mean([raw[name][rows].mean(axis=0) for name, rows in movie_rows.items()], axis=0)
    scale = subject.signal_sd[subject.visual] / np.sqrt(within_run_var)
    signals = {}
    for name, values in raw.items():
        full = np.zeros((len(values), subject.n_grayordinates), dtype=np.float32)
        full[:, subject.visual] = (values - mean) * scale
        signals[name] = full
    return signals


def _demeaned_variance_factor(phi: float, n: int) -> float:
    """Expected variance of a unit-variance AR(1) series after removing its mean over `n` samples."""
    lags = np.arange(1, n)
    variance_of_mean = (1 + 2 * np.sum((1 - lags / n) * phi**lags)) / n
    return 1.0 - variance_of_mean


def _drift_basis(n_volumes: int, movie_rows: slice) -> np.ndarray:
    """[volumes, degrees] polynomials of degree 1-3 with zero mean and unit variance over the movie volumes."""
    t = np.arange(n_volumes, dtype=float)
    window = t[movie_rows]
    centre, half = window.mean(), (window[-1] - window[0]) / 2
    vander = np.polynomial.polynomial.polyvander((t - centre) / half, DRIFT_MAX_DEGREE)
    # Orthonormalise on the movie volumes (against the constant too), then extend the same polynomials to all volumes.
    _, r = np.linalg.qr(vander[movie_rows])
    basis = vander @ np.linalg.inv(r)
    return basis[:, 1:] * np.sqrt(len(window))


def simulate_noise(
    rng: np.random.Generator, n_volumes: int, movie_rows: slice, noise_sd: np.ndarray, noise: NoiseConfig
) -> np.ndarray:
    """[volumes, grayordinates] drift + AR(1) + white noise.

    Each part is scaled so that, over the movie volumes with the run's mean removed (what a user measures), its
    expected variance is its share of noise_sd**2.
    """
    n_columns = len(noise_sd)
    n_movie = len(range(n_volumes)[movie_rows])
    white_fraction = 1.0 - noise.drift_fraction - noise.ar1_fraction
    white = rng.standard_normal((n_volumes, n_columns)) / np.sqrt(1 - 1 / n_movie)

    phi = noise.ar1_phi
    innovations = rng.standard_normal((n_volumes, n_columns)) * np.sqrt(1 - phi**2)
    start = phi * rng.standard_normal((1, n_columns))  # the state before the first volume: a stationary start
    ar1, _ = lfilter([1.0], [1.0, -phi], innovations, axis=0, zi=start)
    ar1 /= np.sqrt(_demeaned_variance_factor(phi, n_movie))

    basis = _drift_basis(n_volumes, movie_rows)
    drift = basis @ (rng.standard_normal((basis.shape[1], n_columns)) / np.sqrt(basis.shape[1]))

    unit = np.sqrt(white_fraction) * white + np.sqrt(noise.ar1_fraction) * ar1 + np.sqrt(noise.drift_fraction) * drift
    return (unit * noise_sd[None]).astype(np.float32)
