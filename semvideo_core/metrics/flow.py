"""Optical-flow end-point error (EPE) between true and reconstructed clips, as Mind-Animator's EPE.py (metrics.md §8):
OpenCV Farnebäck flow (not RAFT) of each consecutive grayscale frame pair at size x size, then the mean over pairs
and pixels of ||flow_truth - flow_recon||_2, in pixels of that size (at 256² roughly half the 512² value).

Clips are uint8 [N, T, H, W, 3] RGB. Frames are resized with cv2.INTER_LINEAR (skipped when already size x size),
then converted with COLOR_BGR2GRAY applied to the RGB array when bgr_quirk (the reference's channel swap:
Y = .114 R + .587 G + .299 B), else COLOR_RGB2GRAY. One clip is one task on `workers` threads (Farnebäck releases
the GIL); the result equals a plain loop over clips and pairs exactly.

To score many reconstructions against one truth, compute the truth flows once with `farneback_flows` and call
`epe_from_flows`. They take N x (T-1) x size² x 2 float32 (2 MiB a pair at 512²: 12 GiB for 1,200 six-frame clips),
so pass the clips in chunks if memory is short; per-clip results do not depend on the chunking.
"""

from __future__ import annotations

from itertools import pairwise

import cv2
import numpy as np

from .pixel import map_threads

# pyr_scale, levels, winsize, iterations, poly_n, poly_sigma, flags: Mind-Animator's EPE.py.
FARNEBACK = (0.5, 3, 15, 3, 5, 1.2, 0)


def _check_clips(clips: np.ndarray, name: str = "clips") -> np.ndarray:
    clips = np.asarray(clips)
    if clips.ndim != 5 or clips.shape[-1] != 3 or clips.shape[1] < 2:
        raise ValueError(f"{name} must be [N, T >= 2, H, W, 3] RGB, got shape {clips.shape}")
    if clips.dtype != np.uint8:
        raise ValueError(f"{name} must be uint8, got {clips.dtype}")
    return clips


def gray_frames(clip: np.ndarray, size: int, bgr_quirk: bool = True) -> np.ndarray:
    """[T, H, W, 3] uint8 RGB -> [T, size, size] uint8 grayscale, resized first (INTER_LINEAR) as the reference."""
    if clip.shape[1:3] != (size, size):
        clip = np.stack([cv2.resize(frame, (size, size), interpolation=cv2.INTER_LINEAR) for frame in clip])
    code = cv2.COLOR_BGR2GRAY if bgr_quirk else cv2.COLOR_RGB2GRAY
    frames = len(clip)
    # Per-pixel conversion: one call over the frames stacked along the rows.
    return cv2.cvtColor(np.ascontiguousarray(clip).reshape(frames * size, size, 3), code).reshape(frames, size, size)


def clip_flows(gray: np.ndarray) -> np.ndarray:
    """[T, S, S] uint8 -> [T-1, S, S, 2] float32 Farnebäck flow (dx, dy in pixels) of each consecutive pair."""
    return np.stack([cv2.calcOpticalFlowFarneback(a, b, None, *FARNEBACK) for a, b in pairwise(gray)])


def pair_epe(flow_truth: np.ndarray, flow_recon: np.ndarray) -> np.ndarray:
    """[P, S, S, 2] x 2 -> [P] mean over pixels of the end-point error of each pair (float64 mean of float32 norms)."""
    return np.linalg.norm(flow_truth - flow_recon, axis=-1).mean(axis=(1, 2), dtype=np.float64)


def farneback_flows(
    clips: np.ndarray, size: int = 512, bgr_quirk: bool = True, workers: int | None = None
) -> np.ndarray:
    """[N, T, H, W, 3] uint8 -> [N, T-1, size, size, 2] float32 flows of every clip (the reusable truth side)."""
    clips = _check_clips(clips)
    flows = np.empty((len(clips), clips.shape[1] - 1, size, size, 2), dtype=np.float32)

    def one(i: int) -> None:
        flows[i] = clip_flows(gray_frames(clips[i], size, bgr_quirk))

    map_threads(one, range(len(clips)), workers)
    return flows


def epe_from_flows(
    predicted: np.ndarray, target_flows: np.ndarray, bgr_quirk: bool = True, workers: int | None = None
) -> np.ndarray:
    """[N, T, H, W, 3] uint8 recon clips, [N, T-1, S, S, 2] truth flows (from `farneback_flows` at size S) -> [N]
    EPE per clip; the recon frames are resized to S x S."""
    predicted = _check_clips(predicted, "predicted")
    target_flows = np.asarray(target_flows)
    expected = (len(predicted), predicted.shape[1] - 1)
    if target_flows.ndim != 5 or target_flows.shape[:2] != expected or target_flows.shape[-1] != 2:
        raise ValueError(
            f"target flows of shape {target_flows.shape} do not fit predicted clips of shape {predicted.shape}: "
            f"expected [{expected[0]}, {expected[1]}, S, S, 2]"
        )
    size = target_flows.shape[2]

    def one(i: int) -> float:
        flows = clip_flows(gray_frames(predicted[i], size, bgr_quirk))
        return pair_epe(target_flows[i], flows).mean()

    return np.asarray(map_threads(one, range(len(predicted)), workers), dtype=np.float64)


def epe(
    predicted: np.ndarray,
    target: np.ndarray,
    size: int = 512,
    bgr_quirk: bool = True,
    workers: int | None = None,
) -> np.ndarray:
    """[N, T, H, W, 3] uint8 x 2 -> [N] mean end-point error per clip (pixels at size x size; lower is better).
    Flows are computed clip by clip and not kept (see `farneback_flows` to reuse the truth side)."""
    predicted, target = _check_clips(predicted, "predicted"), _check_clips(target, "target")
    if predicted.shape[:2] != target.shape[:2]:
        raise ValueError(f"predicted clips {predicted.shape} and target clips {target.shape} differ in N or T")

    def one(i: int) -> float:
        truth = clip_flows(gray_frames(target[i], size, bgr_quirk))
        recon = clip_flows(gray_frames(predicted[i], size, bgr_quirk))
        return pair_epe(truth, recon).mean()

    return np.asarray(map_threads(one, range(len(predicted)), workers), dtype=np.float64)
