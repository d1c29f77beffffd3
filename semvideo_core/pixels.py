"""Frames between their stored form, uint8 [n, H, W, 3], and the networks' form, float [n, 3, H, W] in [-1, 1]
(the VAE's, the generators' and the scene probe's)."""

from __future__ import annotations

import numpy as np
import torch


def to_pixels(frames: np.ndarray) -> torch.Tensor:
    """uint8 [n, H, W, 3] -> float [n, 3, H, W] in [-1, 1]."""
    return torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float() / 127.5 - 1


def to_uint8(pixels: torch.Tensor) -> np.ndarray:
    """float [n, 3, H, W] in [-1, 1] -> uint8 [n, H, W, 3]."""
    return ((pixels.float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
