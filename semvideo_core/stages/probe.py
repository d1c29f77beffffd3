"""Stage of rules/probe.smk: the demo scene probe (train_probe), trained on the ground-truth frames of the demo
world's training clips against their scene labels (semvideo_core.world.labels), and scored on held-out training
clips every epoch and on the ground-truth test frames at the end."""

from __future__ import annotations

import hashlib
import json
import logging

import numpy as np
import torch
import torch.nn.functional as F

from ..backends.vae import resize_frames, to_pixels
from ..io import models as model_store
from ..io.clip_arrays import read_clip_array
from ..models.probe import ProbeConfig, SceneProbe
from ..training import TrainConfig, train, validation_split
from ..world.labels import LABELS, clip_labels

log = logging.getLogger(__name__)


def _labelled_frames(clips_path, ground_truth, labelling: dict) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(frames uint8 [N, T, H, W, 3], labels [N, T, 3], clip ids) of a clip file."""
    frames, ids = read_clip_array(clips_path, "frames")
    return frames, clip_labels(ground_truth, ids, **labelling), ids


def _degrade(frames: np.ndarray, size: int) -> np.ndarray:
    """Frames shrunk to `size` and brought back: what a frame rendered at a smaller size looks like to the probe."""
    return resize_frames(resize_frames(frames, size), frames.shape[-2])


def _jitter(frames: np.ndarray, rng: np.random.Generator, shift: float = 0.125) -> np.ndarray:
    """Random horizontal flips and circular shifts of up to `shift` of the side: neither changes a label, and they
    multiply the few hundred objects of the training shots. (Quarter turns as well scored lower on shape.)"""
    out = np.empty_like(frames)
    side = frames.shape[1]
    reach = int(shift * side)
    for i, frame in enumerate(frames):
        frame = frame[:, ::-1] if rng.random() < 0.5 else frame
        out[i] = np.roll(frame, tuple(rng.integers(-reach, reach + 1, 2)), axis=(0, 1))
    return out


def _recolour(frames: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Each frame with its colour channels permuted and turned by a random quarter: the same background kind and
    shape in another colour and orientation (the colour label no longer holds)."""
    out = np.empty_like(frames)
    for i, frame in enumerate(frames):
        out[i] = np.rot90(frame[..., rng.permutation(3)], int(rng.integers(4)))
    return out


@torch.inference_mode()
def classify_frames(probe: SceneProbe, frames: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """uint8 frames [..., H, W, 3] of any size -> predicted labels [..., 3] (background, colour, shape)."""
    probe.eval()
    flat = frames.reshape(-1, *frames.shape[-3:])
    out = []
    for start in range(0, len(flat), batch_size):
        chunk = resize_frames(flat[start : start + batch_size], probe.config.size)
        logits = probe(to_pixels(chunk))
        out.append(torch.stack([logits[name].argmax(-1) for name in LABELS], -1).numpy())
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


def load_probe(path) -> SceneProbe:
    return model_store.load_model(path, "probe", lambda config: SceneProbe(ProbeConfig(**config)))[0]


def train_probe(clips_path, test_clips_path, ground_truth, labelling: dict, settings: dict, out_path, state_dir):
    """Train the scene probe on the training clips' frames (a held-out fraction of clips excluded), half of each
    batch degraded to `degrade_size` and back so that it reads frames rendered at the latent stage's size too.
    `labelling`: protocol, fps, clip_seconds of the clip files; `settings`: the config's probe section.
    -> accuracies on the ground-truth test frames."""
    frames, labels, ids = _labelled_frames(clips_path, ground_truth, labelling)
    config = ProbeConfig(size=settings["size"], channels=settings["channels"], dropout=settings["dropout"])
    phase = TrainConfig(**settings["train"])
    train_rows, val_rows = validation_split(len(ids), settings["val_fraction"], phase.seed)
    train_frames = resize_frames(frames[train_rows], config.size).reshape(-1, config.size, config.size, 3)
    train_labels = torch.from_numpy(labels[train_rows].reshape(-1, len(LABELS)))
    val_frames, val_labels = frames[val_rows], labels[val_rows]
    torch.manual_seed(phase.seed)
    probe = SceneProbe(config)
    log.info(
        "scene probe: %.2f M parameters, %d training frames",
        sum(p.numel() for p in probe.parameters()) / 1e6,
        len(train_frames),
    )

    def plan(epoch, rng):
        order = rng.permutation(len(train_frames))
        return [np.sort(b) for b in np.array_split(order, max(1, len(order) // phase.batch_size))]

    def loss_fn(probe, rows):
        batch = train_frames[rows]
        half = len(batch) // 2
        batch = np.concatenate([_degrade(batch[:half], settings["degrade_size"]), batch[half:]])
        rng = np.random.default_rng(rows)
        batch = _jitter(batch, rng)
        recoloured = rng.random(len(batch)) < settings["recolour"]
        batch[recoloured] = _recolour(batch[recoloured], rng)
        logits = probe(to_pixels(batch).to(phase.device))
        target = train_labels[rows].to(phase.device)
        parts = {name: F.cross_entropy(logits[name], target[:, i]) for i, name in enumerate(LABELS)}
        keep = torch.from_numpy(~recoloured).to(phase.device)
        losses = F.cross_entropy(logits["colour"], target[:, 1], reduction="none")
        parts["colour"] = (losses * keep).sum() / keep.sum().clamp(min=1)  # the recoloured frames have no colour label
        return sum(parts.values()), {name: value.item() for name, value in parts.items()}

    def validate(probe):
        return accuracy(classify_frames(probe, val_frames), val_labels) if len(val_rows) else {}

    scores = {}

    def save(probe, log_csv):
        test_frames, test_labels, _ = _labelled_frames(test_clips_path, ground_truth, labelling)
        scores.update(accuracy(classify_frames(probe, test_frames), test_labels))
        extra = {
            "test_accuracy": scores,
            "test_chance": chance(test_labels),
            "labels": {k: list(v) for k, v in LABELS.items()},
        }
        model_store.save_model(
            probe, out_path, "probe", {**extra, "settings": settings, "labelling": labelling, "log": str(log_csv)}
        )
        log.info(
            "scene probe on ground-truth test frames: %s (chance %s) -> %s", scores, extra["test_chance"], out_path
        )

    identity = hashlib.sha256(
        frames[train_rows].tobytes() + labels.tobytes() + json.dumps([settings, labelling], sort_keys=True).encode()
    ).hexdigest()
    train(probe, loss_fn, plan, phase, state_dir, validate, "scene probe", identity=identity[:16], save=save)
    return scores
