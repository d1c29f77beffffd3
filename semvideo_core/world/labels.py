"""Per-frame scene labels of the demo world, from its ground truth: the background kind of the shot on screen and
the colour and shape of its largest object at that instant. The scene probe learns to read them from pixels."""

from __future__ import annotations

import json

import h5py
import numpy as np

from ..data.clips import clip_frame_indices
from .scenes import BACKGROUNDS, OBJECT_COLOURS, SHAPES, SceneObject

LABELS = {"background": BACKGROUNDS, "colour": tuple(OBJECT_COLOURS), "shape": SHAPES}


def shot_labels(shots: list[dict], times: np.ndarray) -> np.ndarray:
    """Labels [len(times), 3] (indices into LABELS' background, colour, shape) at movie times `times` (seconds),
    given the shots of one clip as ground_truth.h5 stores them."""
    starts = np.array([shot["start"] for shot in shots])
    labels = np.zeros((len(times), len(LABELS)), np.int64)
    for row, t in enumerate(times):
        shot = shots[max(0, int(np.searchsorted(starts, t + 1e-6, side="right")) - 1)]
        objects = [SceneObject(**obj) for obj in shot["objects"]]
        local = np.array([t - shot["start"]], np.float32)
        largest = max(objects, key=lambda obj: float(obj.state(local, shot["duration"])[2][0]))
        labels[row] = (
            BACKGROUNDS.index(shot["background"]),
            LABELS["colour"].index(largest.colour),
            SHAPES.index(largest.shape),
        )
    return labels


def clip_labels(ground_truth, clip_ids: list[str], protocol: str, fps: float, clip_seconds: float) -> np.ndarray:
    """Labels [N, T, 3] of every frame of `clip_ids`, sampled as the clip files sample them (`protocol`)."""
    with h5py.File(ground_truth, "r") as handle:
        group = handle["clips"]
        ids = [c.decode() if isinstance(c, bytes) else str(c) for c in group["clip_id"][()]]
        rows = {clip: i for i, clip in enumerate(ids)}
        missing = [clip for clip in clip_ids if clip not in rows]
        if missing:
            raise ValueError(f"{ground_truth}: {len(missing)} clips have no ground truth (first: {missing[0]})")
        index, params = group["index"][()], group["scene_params"][()]
    out = []
    for clip in clip_ids:
        row = rows[clip]
        frames = clip_frame_indices(protocol, int(index[row]), fps, clip_seconds)
        out.append(shot_labels(json.loads(params[row]), frames / fps))
    return np.stack(out)
