"""The demo scene probe as a judge (rule train_probe trains it: semvideo_core.stages.probe): load it, read frames
of any size, and score its readings against the scene labels of semvideo_core.world.labels."""

from __future__ import annotations

import numpy as np
import torch

from ..data.video import resize_frames
from ..io import models as model_store
from ..models.probe import ProbeConfig, SceneProbe
from ..pixels import to_pixels
from ..world.labels import LABELS


def load_probe(path) -> SceneProbe:
    """The probe rule train_probe saved at `path` (weights and JSON config)."""
    return model_store.load_model(path, "probe", lambda config: SceneProbe(ProbeConfig(**config)))[0]


@torch.inference_mode()
def classify_frames(probe: SceneProbe, frames: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """uint8 frames [..., H, W, 3] of any size -> predicted labels [..., 3] (background, colour, shape)."""
    probe.eval()
    flat = frames.reshape(-1, *frames.shape[-3:])
    out = []
    for start in range(0, len(flat), batch_size):
        chunk = resize_frames(flat[start : start + batch_size], probe.config.size)
        out.append(probe.read(to_pixels(chunk), tuple(LABELS)).numpy())
    labels = np.concatenate(out) if out else np.zeros((0, len(LABELS)), np.int64)
    return labels.reshape(*frames.shape[:-3], len(LABELS))


def accuracy(predicted: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """Fraction of frames read right, per label."""
    hits = (predicted.reshape(-1, len(LABELS)) == truth.reshape(-1, len(LABELS))).mean(0)
    return {name: float(hits[i]) for i, name in enumerate(LABELS)}


def chance(truth: np.ndarray) -> dict[str, float]:
    """Accuracy of always answering the most common label."""
    flat = truth.reshape(-1, len(LABELS))
    return {name: float(np.bincount(flat[:, i]).max() / len(flat)) for i, name in enumerate(LABELS)}
