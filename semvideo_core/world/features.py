"""Stimulus features that drive the demo world's encoding model, one row per video frame.

Three groups, as in voxel-wise encoding models of movie fMRI:
- retinotopic colour: mean R, G, B in each cell of a grid x grid layout;
- object identity: how many objects of each shape and of each colour are on screen;
- motion energy: gradient-based direction-selective energy (right, left, down, up) on a coarse grid, and
  unsigned temporal energy |dL/dt| on the full grid.
"""

from __future__ import annotations

import numpy as np

from .scenes import OBJECT_COLOURS, SHAPES, Scene

GROUPS = ("colour", "identity", "motion")


def group_sizes(grid: int) -> dict[str, int]:
    coarse = max(grid // 2, 1)
    return {
        "colour": 3 * grid * grid,
        "identity": len(SHAPES) + len(OBJECT_COLOURS),
        "motion": 4 * coarse * coarse + grid * grid,
    }


def _pool(images: np.ndarray, cells: int) -> np.ndarray:
    """Mean over a cells x cells grid: [T, H, W] or [T, H, W, C] -> [T, cells * cells (* C)].

    Two matrix products with a block-averaging matrix: much faster than a reduction over strided axes.
    """
    size = images.shape[1]
    averaging = np.kron(np.eye(cells, dtype=np.float32), np.full((1, size // cells), cells / size, dtype=np.float32))
    if images.ndim == 4:  # channels last -> pool each channel, keep channels last
        pooled = averaging @ np.moveaxis(images, 3, 1) @ averaging.T  # [T, C, cells, cells]
        return np.moveaxis(pooled, 1, 3).reshape(len(images), -1)
    return (averaging @ images @ averaging.T).reshape(len(images), -1)


def luminance(frames: np.ndarray) -> np.ndarray:
    """[T, H, W, 3] uint8 -> [T, H, W] float32 in [0, 1] (Rec. 601 weights)."""
    return (frames.astype(np.float32) @ np.array([0.299, 0.587, 0.114], dtype=np.float32)) / 255.0


def pixel_features(frames: np.ndarray, previous_luma: np.ndarray, grid: int) -> np.ndarray:
    """Colour and motion features of consecutive frames: [T, H, W, 3] uint8 -> [T, colour + motion].

    `previous_luma` [H, W] is the luminance of the frame shown just before the first one.
    """
    colour = _pool(frames.astype(np.float32) / 255.0, grid)
    luma = luminance(frames)
    temporal = np.diff(luma, axis=0, prepend=previous_luma[None])
    grad_y, grad_x = np.gradient(luma, axis=(1, 2))
    # For a pattern moving with velocity (u, v): dL/dt = -(u dL/dx + v dL/dy), so -dL/dt * dL/dx has the sign of u.
    flow_x, flow_y = -temporal * grad_x, -temporal * grad_y
    coarse = max(grid // 2, 1)
    directional = [
        _pool(np.maximum(sign * flow, 0) * 100.0, coarse) for flow in (flow_x, flow_y) for sign in (1, -1)
    ]  # right, left, down, up
    motion = np.concatenate(
        [np.stack(directional, axis=-1).reshape(len(frames), -1), _pool(np.abs(temporal), grid)], axis=1
    )
    return np.concatenate([colour, motion], axis=1).astype(np.float32)


def identity_features(scene: Scene | None, n_frames: int) -> np.ndarray:
    """[T, shapes + colours] counts of the objects on screen (all zero on the blank screen)."""
    row = np.zeros(len(SHAPES) + len(OBJECT_COLOURS), dtype=np.float32)
    if scene is not None:
        colours = list(OBJECT_COLOURS)
        for obj in scene.objects:
            row[SHAPES.index(obj.shape)] += 1
            row[len(SHAPES) + colours.index(obj.colour)] += 1
    return np.repeat(row[None], n_frames, axis=0)


def frame_features(frames: np.ndarray, previous_luma: np.ndarray, scene: Scene | None, grid: int) -> np.ndarray:
    """All features in GROUPS order: [T, sum(group_sizes)]."""
    pixels = pixel_features(frames, previous_luma, grid)
    n_colour = group_sizes(grid)["colour"]
    identity = identity_features(scene, len(frames))
    return np.concatenate([pixels[:, :n_colour], identity, pixels[:, n_colour:]], axis=1)
