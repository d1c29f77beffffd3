"""Rasterise shots of the scene grammar into RGB frames (numpy, vectorised over frames)."""

from __future__ import annotations

import numpy as np

from .scenes import BACKGROUND_COLOURS, OBJECT_COLOURS, Scene, SceneObject

BLANK_GRAY = 128  # the screen between movies


def _grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    centres = (np.arange(size, dtype=np.float32) + 0.5) / size
    return centres[None, :], centres[:, None]  # x [1, W], y [H, 1]


def background(scene: Scene, size: int) -> np.ndarray:
    """[H, W, 3] uint8."""
    first = np.array(BACKGROUND_COLOURS[scene.colours[0]], dtype=np.float32)
    second = np.array(BACKGROUND_COLOURS[scene.colours[1]], dtype=np.float32)
    x, y = _grid(size)
    if scene.background == "flat":
        weight = np.zeros((size, size), dtype=np.float32)
    elif scene.background == "gradient":  # first colour at the top, second at the bottom
        weight = np.broadcast_to(y, (size, size))
    elif scene.background == "checkered":
        weight = ((np.floor(x * 8) + np.floor(y * 8)) % 2).astype(np.float32)
    elif scene.background == "striped":  # diagonal stripes
        weight = (np.floor((x + y) * 6) % 2).astype(np.float32)
    else:
        raise ValueError(f"unknown background {scene.background!r}")
    image = first * (1 - weight[..., None]) + second * weight[..., None]
    return np.rint(image).astype(np.uint8)


def shape_mask(obj: SceneObject, t: np.ndarray, duration: float, size: int) -> np.ndarray:
    """[T, H, W] bool: the pixels the object covers at each time `t` (seconds since the shot started)."""
    cx, cy, radius, angle = (a[:, None, None] for a in obj.state(t, duration))
    x, y = _grid(size)
    dx, dy = x[None] - cx, y[None] - cy
    cos, sin = np.cos(angle), np.sin(angle)
    # Object frame: rotate by -angle and scale by the radius, so the shape is drawn in the unit disc.
    u = (cos * dx + sin * dy) / radius
    v = (-sin * dx + cos * dy) / radius
    rho2 = u * u + v * v
    if obj.shape == "circle":
        return rho2 <= 1
    if obj.shape == "ring":
        return (rho2 <= 1) & (rho2 >= 0.36)
    if obj.shape == "square":
        return np.maximum(np.abs(u), np.abs(v)) <= 0.8
    if obj.shape == "triangle":  # apex up (towards -v)
        return (v <= 0.5) & (v >= -1 + np.sqrt(3) * np.abs(u))
    if obj.shape == "cross":
        return ((np.abs(u) <= 0.3) & (np.abs(v) <= 1)) | ((np.abs(v) <= 0.3) & (np.abs(u) <= 1))
    if obj.shape == "hexagon":
        inside = np.ones_like(u, dtype=bool)
        for k in range(3):
            inside &= np.abs(u * np.cos(k * np.pi / 3) + v * np.sin(k * np.pi / 3)) <= np.sqrt(3) / 2
        return inside
    if obj.shape == "star":  # five points, one pointing up; the boundary radius swings between 0.45 and 1
        theta = np.arctan2(v, u) + np.pi / 2
        phase = (theta % (2 * np.pi / 5)) / (2 * np.pi / 5)
        boundary = 0.45 + 0.55 * np.abs(2 * phase - 1) ** 2
        return rho2 <= boundary * boundary
    raise ValueError(f"unknown shape {obj.shape!r}")


def render_scene(scene: Scene, t: np.ndarray, size: int) -> np.ndarray:
    """Frames of one shot at times `t` (seconds since the shot started): [T, H, W, 3] uint8."""
    frames = np.repeat(background(scene, size)[None], len(t), axis=0)
    for obj in scene.objects:  # later objects are drawn on top
        mask = shape_mask(obj, t, scene.duration, size)
        frames[mask] = OBJECT_COLOURS[obj.colour]
    return frames


def blank_frame(size: int) -> np.ndarray:
    return np.full((size, size, 3), BLANK_GRAY, dtype=np.uint8)
