"""Video-level semantic scores from per-frame judge features (computed elsewhere): VIFI-score (ViFi-CLIP, truth vs
recon) and CLIP-PCC (temporal consistency of the recon frames), metrics.md §3 and §7. Features are float arrays
[N, T, D] (clips, frames, feature width); everything is computed in float64.
"""

from __future__ import annotations

import numpy as np


def _features(features: np.ndarray, name: str) -> np.ndarray:
    features = np.asarray(features, dtype=np.float64)
    if features.ndim != 3:
        raise ValueError(f"{name} must be [N, T, D], got shape {features.shape}")
    return features


def _unit(vectors: np.ndarray) -> np.ndarray:
    """L2-normalise along the last axis (a zero vector stays zero, so its cosines are 0)."""
    norms = np.linalg.norm(vectors, axis=-1, keepdims=True)
    return vectors / np.where(norms > 0, norms, 1.0)


def vifi_score(truth_features: np.ndarray, recon_features: np.ndarray) -> np.ndarray:
    """[N, T, D] x [N, T', D] -> [N] cosine of the frame-averaged, L2-normalised features of truth and recon.

    Pass the features of the frames ViFi-CLIP's sampler picks (`vifi_frame_indices`), repeats included."""
    truth, recon = _features(truth_features, "truth_features"), _features(recon_features, "recon_features")
    if truth.shape[0] != recon.shape[0] or truth.shape[2] != recon.shape[2]:
        raise ValueError(f"truth features {truth.shape} and recon features {recon.shape} differ in N or D")
    return (_unit(truth.mean(axis=1)) * _unit(recon.mean(axis=1))).sum(axis=-1)


def vifi_frame_indices(frames: int, clip_len: int = 8, num_clips: int = 32) -> list[int]:
    """Frame indices ViFi-CLIP's test-mode SampleFrames (frame_interval 1, 'loop' out-of-bound) feeds the encoder.

    A video of at most clip_len frames puts every clip at offset 0 and wraps: 8 frames -> 0..7, 6 frames ->
    0,1,2,3,4,5,0,1 (frames 0 and 1 count twice in the mean). Since identical clips do not change the mean, they
    are returned once; longer videos give the num_clips clips' indices concatenated."""
    if frames < 1 or clip_len < 1 or num_clips < 1:
        raise ValueError(f"frames, clip_len and num_clips must be >= 1, got {frames}, {clip_len}, {num_clips}")
    if frames > clip_len - 1:
        interval = (frames - clip_len + 1) / num_clips
        offsets = (np.arange(num_clips) * interval + interval / 2).astype(int)
    else:
        offsets = np.zeros(num_clips, dtype=int)
    if np.all(offsets == offsets[0]):
        offsets = offsets[:1]
    indices = (offsets[:, None] + np.arange(clip_len)[None, :]) % frames
    return [int(i) for i in indices.ravel()]


def adjacent_cosines(recon_features: np.ndarray) -> np.ndarray:
    """[N, T, D] -> [N, T-1] cosine of each frame's features with the next frame's."""
    unit = _unit(_features(recon_features, "recon_features"))
    return (unit[:, :-1] * unit[:, 1:]).sum(axis=-1)


def clip_pcc(recon_features: np.ndarray, vifi: np.ndarray, gate: float = 0.6) -> np.ndarray:
    """[N, T, D] recon CLIP features, [N] VIFI-scores -> [N] Mind-Animator's CLIP-PCC per clip: the mean adjacent-frame
    cosine, set to 0 where vifi <= gate (inclusive: a VIFI of exactly 0.6 gives 0). Report the mean over all clips,
    zeros included."""
    features = _features(recon_features, "recon_features")
    vifi = np.asarray(vifi, dtype=np.float64)
    if vifi.shape != (features.shape[0],):
        raise ValueError(f"vifi of shape {vifi.shape} does not fit recon features of shape {features.shape}")
    if features.shape[1] < 2:
        raise ValueError(f"CLIP-PCC needs at least 2 frames per clip, got shape {features.shape}")
    return np.where(vifi > gate, adjacent_cosines(features).mean(axis=1), 0.0)


def clip_pcc_all_pairs(recon_features: np.ndarray) -> np.ndarray:
    """[N, T, D] -> [N] NEURONS' CLIP-pcc: mean cosine over all ordered frame pairs j != k (T (T-1) of them), no gate."""
    unit = _unit(_features(recon_features, "recon_features"))
    frames = unit.shape[1]
    if frames < 2:
        raise ValueError(f"CLIP-pcc needs at least 2 frames per clip, got shape {unit.shape}")
    cosines = unit @ unit.transpose(0, 2, 1)
    cosines[:, np.arange(frames), np.arange(frames)] = 0.0  # the diagonal is zeroed, as the reference does
    return cosines.sum(axis=(1, 2)) / (frames * (frames - 1))
