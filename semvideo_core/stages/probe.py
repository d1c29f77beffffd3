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

from ..backends.probe import accuracy, chance, classify_frames
from ..config import without_checkpointing
from ..data.video import resize_frames
from ..io import models as model_store
from ..io.clip_arrays import read_clip_array
from ..models.probe import ProbeConfig, SceneProbe
from ..pixels import to_pixels
from ..training import TrainConfig, train, validation_split
from ..world.labels import LABELS, clip_label_maps, clip_labels

log = logging.getLogger(__name__)


def _labelled_frames(clips_path, ground_truth, labelling: dict) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(frames uint8 [N, T, H, W, 3], labels [N, T, 3], clip ids) of a clip file."""
    frames, ids = read_clip_array(clips_path, "frames")
    return frames, clip_labels(ground_truth, ids, **labelling), ids


def _degrade(frames: np.ndarray, size: int) -> np.ndarray:
    """Frames shrunk to `size` and brought back: what a frame rendered at a smaller size looks like to the probe."""
    return resize_frames(resize_frames(frames, size), frames.shape[-2])


def _jitter(frames: np.ndarray, maps: np.ndarray, rng: np.random.Generator, shift: float = 0.125):
    """Random horizontal flips and circular shifts of up to `shift` of the side, the same for each frame's label
    maps: neither changes a label, and they multiply the few hundred objects of the training shots. (Quarter turns as
    well scored lower on shape.)"""
    frames, maps = frames.copy(), maps.copy()
    reach = int(shift * frames.shape[1])
    for i in range(len(frames)):
        flip = rng.random() < 0.5
        roll = tuple(rng.integers(-reach, reach + 1, 2))
        for array in (frames, maps):
            item = array[i, :, ::-1] if flip else array[i]
            array[i] = np.roll(item, roll, axis=(0, 1))
    return frames, maps


def _recolour(frames: np.ndarray, maps: np.ndarray, rng: np.random.Generator):
    """Each frame with its colour channels permuted and turned by a random quarter (its label maps turned with it):
    the same background kind and shape in another colour and orientation (the colour label no longer holds)."""
    frames, maps = frames.copy(), maps.copy()
    for i in range(len(frames)):
        turns = int(rng.integers(4))
        frames[i] = np.rot90(frames[i][..., rng.permutation(3)], turns)
        maps[i] = np.rot90(maps[i], turns)
    return frames, maps


def _cells(maps: np.ndarray, side: int) -> np.ndarray:
    """Label maps [B, size, size, 2] -> the label at the centre of each of side x side cells, int64 [B, side, side, 2]."""
    step = maps.shape[1] // side
    return maps[:, step // 2 :: step, step // 2 :: step].astype(np.int64)


def train_probe(clips_path, test_clips_path, ground_truth, labelling: dict, settings: dict, out_path, state_dir):
    """Train the scene probe on the training clips' frames (a held-out fraction of clips excluded), half of each
    batch degraded to `degrade_size` and back so that it reads frames rendered at the latent stage's size too. Beside
    the frame's labels, one stage's maps learn what covers each cell (the shape and colour on top, or background:
    shot_label_maps), weighted by `dense_weight`; a probe taught only the largest object's shape confuses circles,
    squares and hexagons of objects it has not seen.
    `labelling`: protocol, fps, clip_seconds of the clip files; `settings`: the config's probe section.
    -> accuracies on the ground-truth test frames."""
    frames, labels, ids = _labelled_frames(clips_path, ground_truth, labelling)
    config = ProbeConfig(
        size=settings["size"],
        channels=settings["channels"],
        dropout=settings["dropout"],
        dense_stage=settings["dense_stage"],
        colour_readout=settings["colour_readout"],
    )
    phase = TrainConfig(**settings["train"])
    train_rows, val_rows = validation_split(len(ids), settings["val_fraction"], phase.seed)
    train_frames = resize_frames(frames[train_rows], config.size).reshape(-1, config.size, config.size, 3)
    train_labels = torch.from_numpy(labels[train_rows].reshape(-1, len(LABELS)))
    train_maps = clip_label_maps(ground_truth, [ids[i] for i in train_rows], **labelling, size=config.size)
    train_maps = train_maps.reshape(-1, config.size, config.size, 2)
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
        batch, maps = train_frames[rows], train_maps[rows]
        half = len(batch) // 2
        batch = np.concatenate([_degrade(batch[:half], settings["degrade_size"]), batch[half:]])
        rng = np.random.default_rng(rows)
        batch, maps = _jitter(batch, maps, rng)
        recoloured = rng.random(len(batch)) < settings["recolour"]
        batch[recoloured], maps[recoloured] = _recolour(batch[recoloured], maps[recoloured], rng)
        logits = probe(to_pixels(batch).to(phase.device), dense=bool(settings["dense_weight"]))
        target = train_labels[rows].to(phase.device)
        parts = {name: F.cross_entropy(logits[name], target[:, i]) for i, name in enumerate(LABELS)}
        keep = torch.from_numpy(~recoloured).to(phase.device)
        losses = F.cross_entropy(logits["colour"], target[:, 1], reduction="none")
        parts["colour"] = (losses * keep).sum() / keep.sum().clamp(min=1)  # the recoloured frames have no colour label
        if settings["dense_weight"]:
            side = logits["dense_shape"].shape[-1]
            cells = torch.from_numpy(_cells(maps, side)).to(phase.device)  # [B, side, side, 2]
            dense_shape = F.cross_entropy(logits["dense_shape"], cells[..., 0])
            dense_colour = F.cross_entropy(logits["dense_colour"], cells[..., 1], reduction="none").mean((1, 2))
            parts["dense_shape"] = settings["dense_weight"] * dense_shape
            parts["dense_colour"] = settings["dense_weight"] * (dense_colour * keep).sum() / keep.sum().clamp(min=1)
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

    identity = hashlib.sha256(json.dumps([without_checkpointing(settings), labelling], sort_keys=True).encode())
    for array in (frames[train_rows], labels, train_maps):  # the targets too: a checkpoint never resumes on others
        identity.update(np.ascontiguousarray(array))
    train(
        probe, loss_fn, plan, phase, state_dir, validate, "scene probe", identity=identity.hexdigest()[:16], save=save
    )
    return scores
