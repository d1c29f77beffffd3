"""Pixel-level scores of reconstructed frames against the true ones, per frame (arrays in, arrays out).

Frames are uint8 (or float in 0..255) [..., H, W, 3]; every score is computed per frame over its pixels and
returned with the leading axes kept. SSIM is scikit-image's (Gaussian-free 7x7 window, colour channels averaged).
"""

from __future__ import annotations

import numpy as np
from skimage.metrics import structural_similarity

MAX_PIXEL = 255.0


def _pairs(predicted: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if predicted.shape != target.shape:
        raise ValueError(f"frames of shape {predicted.shape} cannot be scored against {target.shape}")
    return predicted.reshape(-1, *predicted.shape[-3:]).astype(np.float64), target.reshape(
        -1, *target.shape[-3:]
    ).astype(np.float64)


def psnr(predicted: np.ndarray, target: np.ndarray) -> np.ndarray:
    """10 log10(255^2 / MSE) per frame (dB); an exact frame scores inf."""
    p, t = _pairs(predicted, target)
    mse = ((p - t) ** 2).mean(axis=(1, 2, 3))
    with np.errstate(divide="ignore"):
        return (10 * np.log10(MAX_PIXEL**2 / mse)).reshape(predicted.shape[:-3])


def ssim(predicted: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Structural similarity per frame (scikit-image, data range 255, over the colour channels)."""
    p, t = _pairs(predicted, target)
    scores = [structural_similarity(a, b, channel_axis=-1, data_range=MAX_PIXEL) for a, b in zip(p, t)]
    return np.asarray(scores).reshape(predicted.shape[:-3])


def pixel_correlation(predicted: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Pearson correlation of all pixel values of each frame pair."""
    p, t = _pairs(predicted, target)
    p, t = p.reshape(len(p), -1), t.reshape(len(t), -1)
    p, t = p - p.mean(1, keepdims=True), t - t.mean(1, keepdims=True)
    denominator = np.sqrt((p * p).sum(1) * (t * t).sum(1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return ((p * t).sum(1) / denominator).reshape(predicted.shape[:-3])


def motion_energy(clips: np.ndarray) -> np.ndarray:
    """Mean absolute frame-to-frame change of each clip: [N, T, H, W, 3] -> [N]."""
    frames = clips.astype(np.float64)
    return np.abs(np.diff(frames, axis=1)).mean(axis=(1, 2, 3, 4))
