"""Per-frame scene labels of the demo world, from its ground truth: the background kind of the shot on screen and
the colour and shape of its largest object at that instant - the one covering the most pixels, as a viewer sees it.
The scene probe learns to read them from pixels."""

from __future__ import annotations

import json

import h5py
import numpy as np

from ..data.clips import clip_frame_indices
from .render import shape_mask
from .scenes import BACKGROUNDS, MOTIONS, OBJECT_COLOURS, SHAPES, SceneObject

LABELS = {"background": BACKGROUNDS, "colour": tuple(OBJECT_COLOURS), "shape": SHAPES}
# The demo video judge's classes: the motion and colour of a clip's largest object at its middle frame (64 classes,
# enough distractors for 50-way with the top-3 protocol).
SCENE_CLASSES = tuple(f"{colour} {motion}" for motion in MOTIONS for colour in OBJECT_COLOURS)


AREA_GRID = 128  # side of the grid on which objects' visible pixels are counted (the demo world's frame size)


def _largest_object(shot: dict, t: float) -> SceneObject:
    """The object of `shot` that covers the most pixels at movie time t. Not the largest radius: at one radius a
    circle covers 2.4 times a triangle's area, a later object hides what it is drawn over, and the frame's edge cuts
    an object off; a probe reading pixels cannot see a radius (the first object wins a tie)."""
    objects = [SceneObject(**obj) for obj in shot["objects"]]
    local = np.array([t - shot["start"]], np.float32)
    covered = np.zeros((AREA_GRID, AREA_GRID), bool)
    visible = [0] * len(objects)
    for i in reversed(range(len(objects))):  # the later objects are drawn on top
        mask = shape_mask(objects[i], local, shot["duration"], AREA_GRID)[0]
        visible[i] = int((mask & ~covered).sum())
        covered |= mask
    return objects[int(np.argmax(visible))]


def _shot_at(shots: list[dict], t: float) -> dict:
    starts = np.array([shot["start"] for shot in shots])
    return shots[max(0, int(np.searchsorted(starts, t + 1e-6, side="right")) - 1)]


def shot_labels(shots: list[dict], times: np.ndarray) -> np.ndarray:
    """Labels [len(times), 3] (indices into LABELS' background, colour, shape) at movie times `times` (seconds),
    given the shots of one clip as ground_truth.h5 stores them."""
    labels = np.zeros((len(times), len(LABELS)), np.int64)
    for row, t in enumerate(times):
        shot = _shot_at(shots, t)
        largest = _largest_object(shot, t)
        labels[row] = (
            BACKGROUNDS.index(shot["background"]),
            LABELS["colour"].index(largest.colour),
            SHAPES.index(largest.shape),
        )
    return labels


def shot_label_maps(shots: list[dict], times: np.ndarray, size: int) -> np.ndarray:
    """What covers each pixel at movie times `times`: uint8 [len(times), size, size, 2], the shape and the colour of
    the object on top (indices into LABELS' shape and colour, plus 1), 0 where the background shows. Dense targets
    for the probe: every object of a frame teaches it shapes, not only the largest."""
    maps = np.zeros((len(times), size, size, 2), np.uint8)
    for row, t in enumerate(times):
        shot = _shot_at(shots, t)
        local = np.array([t - shot["start"]], np.float32)
        for obj in (SceneObject(**o) for o in shot["objects"]):  # the later objects are drawn on top
            mask = shape_mask(obj, local, shot["duration"], size)[0]
            maps[row][mask] = (SHAPES.index(obj.shape) + 1, LABELS["colour"].index(obj.colour) + 1)
    return maps


def _clip_shots(ground_truth, clip_ids: list[str], protocol: str, fps: float, clip_seconds: float):
    """(shots, frame times in seconds) of every clip of `clip_ids`, sampled as the clip files sample them."""
    with h5py.File(ground_truth, "r") as handle:
        group = handle["clips"]
        ids = [c.decode() if isinstance(c, bytes) else str(c) for c in group["clip_id"][()]]
        rows = {clip: i for i, clip in enumerate(ids)}
        missing = [clip for clip in clip_ids if clip not in rows]
        if missing:
            raise ValueError(f"{ground_truth}: {len(missing)} clips have no ground truth (first: {missing[0]})")
        index, params = group["index"][()], group["scene_params"][()]
    for clip in clip_ids:
        row = rows[clip]
        frames = clip_frame_indices(protocol, int(index[row]), fps, clip_seconds)
        yield json.loads(params[row]), frames / fps


def clip_labels(ground_truth, clip_ids: list[str], protocol: str, fps: float, clip_seconds: float) -> np.ndarray:
    """Labels [N, T, 3] of every frame of `clip_ids`, sampled as the clip files sample them (`protocol`)."""
    shots = _clip_shots(ground_truth, clip_ids, protocol, fps, clip_seconds)
    return np.stack([shot_labels(clip_shots, times) for clip_shots, times in shots])


def clip_scene_classes(ground_truth, clip_ids: list[str], protocol: str, fps: float, clip_seconds: float) -> np.ndarray:
    """Index into SCENE_CLASSES [N] of every clip: its largest object's colour and motion at the middle frame."""
    classes = []
    for shots, times in _clip_shots(ground_truth, clip_ids, protocol, fps, clip_seconds):
        t = float(times[len(times) // 2])
        largest = _largest_object(_shot_at(shots, t), t)
        classes.append(MOTIONS.index(largest.motion) * len(OBJECT_COLOURS) + list(OBJECT_COLOURS).index(largest.colour))
    return np.array(classes, np.int64)


def clip_label_maps(
    ground_truth, clip_ids: list[str], protocol: str, fps: float, clip_seconds: float, size: int
) -> np.ndarray:
    """shot_label_maps [N, T, size, size, 2] of every frame of `clip_ids`, sampled as the clip files sample them."""
    shots = _clip_shots(ground_truth, clip_ids, protocol, fps, clip_seconds)
    return np.stack([shot_label_maps(clip_shots, times, size) for clip_shots, times in shots])
