"""Pixel-level scores of reconstructed frames against the true ones, per frame (arrays in, arrays out).

Frames are uint8 (or, where stated, float in 0..255) [..., H, W, 3] RGB; every score is computed per frame over its
pixels and returned with the leading axes kept, e.g. [N, T, H, W, 3] -> [N, T]. Definitions follow the reference
scripts (MinD-Video, NEURONS, Mind-Animator; SSIM lineages, PSNR, Hue-PCC). scikit-image and OpenCV do the pixel
work; this module only batches and threads around them, and every batched path equals a plain per-frame loop of
the same calls (bit for bit, or to rounding where a sum is reordered). Sums over uint8 values (PSNR's squared
errors, the hue moments) come exact from value histograms (cv2.calcHist), hence equal numpy's float sums.

`workers` is the number of threads of our own (None or 1: the calling thread only). scikit-image, SciPy and
OpenCV release the GIL in their kernels, so threads scale; OpenCV's own internal pool (cv2.setNumThreads) is the
caller's, process-wide setting and is left alone.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor

import cv2
import numpy as np
from skimage.color import rgb2gray
from skimage.metrics import structural_similarity

MAX_PIXEL = 255.0
PSNR_CAP = 100.0  # Mind-Animator's value for identical frames (MSE < 1e-10) instead of inf
SSIM_LINEAGES = ("rgb7", "gray_gauss_percolumn", "gray_gauss_2d")
LEVELS = np.arange(256, dtype=np.int64)  # uint8 values, for sums over value histograms
CHUNK_FRAMES = 32  # frames per vectorised call: bounds temporaries and feeds `workers` threads


# -- helpers shared by the metric modules -----------------------------------------------------------------------


def map_threads(function: Callable, items: Iterable, workers: int | None = None) -> list:
    """`[function(item) for item in items]`, on `workers` threads (None or 1: in the calling thread), in order."""
    if workers is not None and workers < 1:
        raise ValueError(f"workers must be >= 1 (or None), got {workers}")
    items = list(items)
    if not workers or workers == 1 or len(items) <= 1:
        return [function(item) for item in items]
    with ThreadPoolExecutor(max_workers=min(workers, len(items))) as pool:
        return list(pool.map(function, items))


def chunks(count: int, size: int = CHUNK_FRAMES) -> list[slice]:
    """Consecutive slices of at most `size` covering range(count)."""
    return [slice(start, min(start + size, count)) for start in range(0, count, size)]


def frame_pairs(predicted: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Both arrays as [F, H, W, 3] (views where possible), after checking they match."""
    predicted, target = np.asarray(predicted), np.asarray(target)
    if predicted.shape != target.shape:
        raise ValueError(f"frames of shape {predicted.shape} cannot be scored against {target.shape}")
    if predicted.ndim < 3 or predicted.shape[-1] != 3:
        raise ValueError(f"frames must be [..., H, W, 3] RGB, got shape {predicted.shape}")
    return predicted.reshape(-1, *predicted.shape[-3:]), target.reshape(-1, *target.shape[-3:])


def value_histograms(values: np.ndarray) -> np.ndarray:
    """[F, R, C] uint8 -> [F, 256] int64: how often each value occurs in each frame (OpenCV calcHist, exact while a
    frame holds fewer than 2^24 values, as its float32 counts are).

    Sums of any function of uint8 values then are exact integer dot products, e.g. sum x^2 = counts @ LEVELS^2."""
    per_frame = int(np.prod(values.shape[1:]))
    if per_frame >= 2**24:
        raise ValueError(f"frames of {per_frame} values are too large for exact float32 histogram counts")
    counts = [cv2.calcHist([np.ascontiguousarray(frame)], [0], None, [256], [0, 256]).ravel() for frame in values]
    return np.asarray(counts).astype(np.int64).reshape(len(values), 256)


def _per_frame(
    function: Callable, predicted: np.ndarray, target: np.ndarray, shape: Sequence[int], workers: int | None
) -> np.ndarray:
    scores = map_threads(lambda i: function(predicted[i], target[i]), range(len(predicted)), workers)
    return np.asarray(scores, dtype=np.float64).reshape(shape)


# -- PSNR ---------------------------------------------------------------------------------------------------------


def _sum_squared_differences(predicted: np.ndarray, target: np.ndarray) -> np.ndarray:
    """[F, H, W, 3] uint8 x 2 -> [F] int64 exact sums of (p - t)^2, from the histogram of |p - t| (cv2.absdiff on
    the frames stacked along the rows: one call, per value)."""
    frames, height = len(predicted), predicted.shape[1]
    diff = cv2.absdiff(predicted.reshape(frames * height, -1), target.reshape(frames * height, -1))
    return value_histograms(diff.reshape(frames, height, -1)) @ LEVELS**2


def _mse(predicted: np.ndarray, target: np.ndarray) -> np.ndarray:
    """[F, H, W, 3] x 2 -> [F] mean squared error in float64, equal to np.mean((p - t) ** 2) per frame.

    For uint8 frames the sum of squared differences is exact, as is numpy's float64 sum of them (integer partial
    sums below 2^53, in any order), so dividing by the count gives numpy's mean bit for bit."""
    count = int(np.prod(predicted.shape[1:]))
    if predicted.dtype == np.uint8 and target.dtype == np.uint8 and count < 2**24:
        return _sum_squared_differences(predicted, target) / count
    diff = predicted.astype(np.float64).reshape(len(predicted), -1) - target.astype(np.float64).reshape(len(target), -1)
    return (diff * diff).mean(axis=1)


def psnr(predicted: np.ndarray, target: np.ndarray, workers: int | None = None) -> np.ndarray:
    """[..., H, W, 3] x 2 -> [...] peak signal-to-noise ratio per frame (dB), 10 log10(255^2 / MSE).

    MSE is over all pixels and channels of a frame, in float64 (scikit-image's peak_signal_noise_ratio with
    data_range=255); identical frames (MSE < 1e-10) score 100, as Mind-Animator's `psnr` does, instead of inf."""
    p, t = frame_pairs(predicted, target)
    mse = np.concatenate(map_threads(lambda s: _mse(p[s], t[s]), chunks(len(p)), workers) or [np.zeros(0)])
    with np.errstate(divide="ignore"):
        scores = 10 * np.log10(MAX_PIXEL**2 / mse)
    return np.where(mse < 1e-10, PSNR_CAP, scores).reshape(np.shape(predicted)[:-3])


# -- SSIM ---------------------------------------------------------------------------------------------------------


def _ssim_rgb7(predicted: np.ndarray, target: np.ndarray) -> float:
    # MinD-Video / Mind-Animator: 7x7 uniform window, sample covariance, channels averaged, 3-px border cropped.
    return structural_similarity(predicted, target, data_range=MAX_PIXEL, channel_axis=-1)


def _ssim_gray(predicted: np.ndarray, target: np.ndarray, per_column: bool) -> float:
    # NEURONS: Rec.709 grayscale in [0, 1], Gaussian window. Its channel_axis=-1 on a 2-D image makes scikit-image
    # take the width axis as channels: 1-D SSIM down each column, averaged over columns (per_column=True).
    extra = {"channel_axis": -1} if per_column else {}
    return structural_similarity(
        rgb2gray(predicted),
        rgb2gray(target),
        gaussian_weights=True,
        sigma=1.5,
        use_sample_covariance=False,
        data_range=1.0,
        **extra,
    )


def ssim(predicted: np.ndarray, target: np.ndarray, lineage: str = "rgb7", workers: int | None = None) -> np.ndarray:
    """[..., H, W, 3] x 2 -> [...] structural similarity per frame (scikit-image structural_similarity).

    lineage "rgb7": data_range=255, channel_axis=-1, defaults (frames uint8 or float in 0..255).
    "gray_gauss_percolumn": skimage.color.rgb2gray, then channel_axis=-1 (the per-column quirk), gaussian_weights,
    sigma 1.5, population covariance, data_range 1. "gray_gauss_2d": the same as a true 2-D grayscale SSIM.
    The grayscale lineages take uint8 frames (rgb2gray scales them to [0, 1])."""
    if lineage not in SSIM_LINEAGES:
        raise ValueError(f"unknown SSIM lineage {lineage!r}; expected one of {SSIM_LINEAGES}")
    p, t = frame_pairs(predicted, target)
    if lineage != "rgb7" and not (p.dtype == np.uint8 and t.dtype == np.uint8):
        raise ValueError(f"SSIM lineage {lineage!r} needs uint8 frames, got {p.dtype} and {t.dtype}")
    if lineage == "rgb7":
        function = _ssim_rgb7
    else:
        per_column = lineage == "gray_gauss_percolumn"
        function = lambda a, b: _ssim_gray(a, b, per_column)
    return _per_frame(function, p, t, np.shape(predicted)[:-3], workers)


# -- Hue ----------------------------------------------------------------------------------------------------------


def hue(frames: np.ndarray, bgr_quirk: bool = True) -> np.ndarray:
    """[F, H, W, 3] uint8 RGB -> [F, H, W] uint8 OpenCV hue (0..179, in 2-degree steps; 0 for achromatic pixels).

    bgr_quirk=True passes the RGB array to COLOR_BGR2HSV as Mind-Animator does (R and B swapped); False converts with
    COLOR_RGB2HSV. The conversion is per pixel, so one cvtColor call covers the frames stacked along the rows."""
    if frames.dtype != np.uint8:
        raise ValueError(f"hue needs uint8 frames (OpenCV's 8-bit hue), got {frames.dtype}")
    count, height, width, _ = frames.shape
    code = cv2.COLOR_BGR2HSV if bgr_quirk else cv2.COLOR_RGB2HSV
    hsv = cv2.cvtColor(np.ascontiguousarray(frames).reshape(count * height, width, 3), code)
    return cv2.extractChannel(hsv, 0).reshape(count, height, width)


def _hue_moments(predicted: np.ndarray, target: np.ndarray, bgr_quirk: bool) -> np.ndarray:
    """[F, H, W, 3] x 2 -> [F, 5] int64: sum x, sum y, sum x^2, sum y^2, sum xy of the two frames' hues x, y.

    Exact integers from value histograms, with sum xy = (sum x^2 + sum y^2 - sum (x - y)^2) / 2: no float
    conversion of the hue planes, and no rounding before the final division."""
    x, y = hue(predicted, bgr_quirk), hue(target, bgr_quirk)
    frames, height, width = x.shape
    diff = cv2.absdiff(x.reshape(frames * height, width), y.reshape(frames * height, width)).reshape(x.shape)
    hx, hy, hd = value_histograms(x), value_histograms(y), value_histograms(diff)
    sxx, syy = hx @ LEVELS**2, hy @ LEVELS**2
    return np.stack([hx @ LEVELS, hy @ LEVELS, sxx, syy, (sxx + syy - hd @ LEVELS**2) // 2], axis=1)


def _hue_cosine(predicted: np.ndarray, target: np.ndarray, bgr_quirk: bool) -> np.ndarray:
    _, _, sxx, syy, sxy = _hue_moments(predicted, target, bgr_quirk).T
    with np.errstate(invalid="ignore", divide="ignore"):
        return sxy / (np.sqrt(sxx.astype(np.float64)) * np.sqrt(syy.astype(np.float64)))


def _hue_correlation(predicted: np.ndarray, target: np.ndarray, bgr_quirk: bool) -> np.ndarray:
    sx, sy, sxx, syy, sxy = _hue_moments(predicted, target, bgr_quirk).T
    n = predicted.shape[1] * predicted.shape[2]
    # n sum(xy) - sum(x) sum(y) etc. in exact integers (int64 holds them up to ~1.7e7 pixels a frame).
    covariance = n * sxy - sx * sy
    spread_x, spread_y = n * sxx - sx * sx, n * syy - sy * sy
    with np.errstate(invalid="ignore", divide="ignore"):
        return covariance / (np.sqrt(spread_x.astype(np.float64)) * np.sqrt(spread_y.astype(np.float64)))


def _hue_score(function: Callable, predicted, target, bgr_quirk: bool, workers: int | None) -> np.ndarray:
    p, t = frame_pairs(predicted, target)
    blocks = map_threads(lambda s: function(p[s], t[s], bgr_quirk), chunks(len(p)), workers)
    return np.concatenate(blocks or [np.zeros(0)]).reshape(np.shape(predicted)[:-3])


def hue_pcc(
    predicted: np.ndarray, target: np.ndarray, bgr_quirk: bool = True, workers: int | None = None
) -> np.ndarray:
    """[..., H, W, 3] uint8 x 2 -> [...] Mind-Animator's "Hue-PCC" per frame: the uncentred cosine of the two hue
    channels, sum(h_p h_t) / (||h_p|| ||h_t||) (not Pearson, despite the name), on OpenCV hues (see `hue`).

    As in the reference, nothing guards a frame whose hues are all 0 (achromatic, e.g. all gray or black): its score
    is 0/0 = NaN. Average with np.nanmean only if you mean to drop such frames; the reference would yield NaN."""
    return _hue_score(_hue_cosine, predicted, target, bgr_quirk, workers)


def hue_pearson(
    predicted: np.ndarray, target: np.ndarray, bgr_quirk: bool = False, workers: int | None = None
) -> np.ndarray:
    """[..., H, W, 3] uint8 x 2 -> [...] Pearson correlation of the OpenCV hue channels per frame (a corrected
    variant, not the reference "Hue-PCC"; RGB2HSV by default). NaN where either frame has a constant hue."""
    return _hue_score(_hue_correlation, predicted, target, bgr_quirk, workers)


# -- other --------------------------------------------------------------------------------------------------------


def pixel_correlation(predicted: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Pearson correlation of all pixel values of each frame pair."""
    p, t = frame_pairs(predicted, target)
    p, t = p.reshape(len(p), -1).astype(np.float64), t.reshape(len(t), -1).astype(np.float64)
    p, t = p - p.mean(1, keepdims=True), t - t.mean(1, keepdims=True)
    denominator = np.sqrt((p * p).sum(1) * (t * t).sum(1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return ((p * t).sum(1) / denominator).reshape(np.shape(predicted)[:-3])


def motion_energy(clips: np.ndarray) -> np.ndarray:
    """Mean absolute frame-to-frame change of each clip: [N, T, H, W, 3] -> [N]."""
    frames = clips.astype(np.float64)
    return np.abs(np.diff(frames, axis=1)).mean(axis=(1, 2, 3, 4))
