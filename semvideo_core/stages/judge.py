"""Stage of rules/judge.smk: the demo's video judge (train_video_judge), a small VideoMAEForVideoClassification
trained on the ground-truth training clips of the demo world to name each clip's scene class (the colour and
motion of its largest object, world.labels.SCENE_CLASSES). It stands in for Kinetics VideoMAE in N-way-V and, with
its pooled features, for ViFi-CLIP in VIFI. Saved with save_pretrained beside its VideoMAEImageProcessor, so that
evaluation loads it exactly as it loads the real one."""

from __future__ import annotations

import hashlib
import json
import logging

import numpy as np
import torch
import torch.nn.functional as F
from transformers import VideoMAEConfig, VideoMAEForVideoClassification, VideoMAEImageProcessor

from ..config import without_checkpointing
from ..io.atomic import atomic_directory
from ..io.clip_arrays import read_clip_array
from ..training import TrainConfig, train, validation_split
from ..world.labels import SCENE_CLASSES, clip_scene_classes

log = logging.getLogger(__name__)
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def build_video_judge(settings: dict, frames: int) -> tuple[VideoMAEForVideoClassification, VideoMAEImageProcessor]:
    """An untrained demo VideoMAE (random weights: for train_video_judge to train and tests of loading) and its
    processor (shortest edge and crop = `size`, ImageNet statistics, as the Kinetics model's)."""
    model = settings["model"]
    config = VideoMAEConfig(
        image_size=settings["size"],
        patch_size=model["patch_size"],
        num_frames=frames,
        tubelet_size=2,
        hidden_size=model["hidden_size"],
        num_hidden_layers=model["layers"],
        num_attention_heads=model["heads"],
        intermediate_size=4 * model["hidden_size"],
        use_mean_pooling=True,
        num_labels=len(SCENE_CLASSES),
        id2label=dict(enumerate(SCENE_CLASSES)),
        label2id={name: i for i, name in enumerate(SCENE_CLASSES)},
    )
    size = settings["size"]
    processor = VideoMAEImageProcessor(
        size={"shortest_edge": size},
        crop_size={"height": size, "width": size},
        image_mean=list(IMAGENET_MEAN),
        image_std=list(IMAGENET_STD),
    )
    return VideoMAEForVideoClassification(config), processor


def _pixels(processor, clips: np.ndarray) -> torch.Tensor:
    """uint8 [N, T, H, W, 3] -> [N, T, 3, size, size], preprocessed once."""
    out = [processor([list(c) for c in clips[i : i + 64]], return_tensors="pt")["pixel_values"] for i in range(0, len(clips), 64)]
    return torch.cat(out)


@torch.inference_mode()
def _accuracy(model, pixels: torch.Tensor, classes: np.ndarray) -> float:
    model.eval()
    predicted = torch.cat([model(pixel_values=pixels[i : i + 64]).logits.argmax(-1) for i in range(0, len(pixels), 64)])
    model.train()
    return float((predicted.numpy() == classes).mean())


def train_video_judge(clips_path, test_clips_path, ground_truth, labelling: dict, settings: dict, out_dir, state_dir):
    """Train the demo video judge on the training clips (a held-out fraction excluded; random circular shifts,
    which change no class), save it with its processor in `out_dir`. `labelling`: protocol, fps, clip_seconds of
    the clip files; `settings`: the config's video_judge section. -> accuracy on the ground-truth test clips."""
    clips, ids = read_clip_array(clips_path, "frames")
    classes = clip_scene_classes(ground_truth, ids, **labelling)
    phase = TrainConfig(**settings["train"])
    torch.manual_seed(phase.seed)  # the starting weights, so that a rerun trains the same judge
    model, processor = build_video_judge(settings, clips.shape[1])
    train_rows, val_rows = validation_split(len(ids), settings["val_fraction"], phase.seed)
    pixels = _pixels(processor, clips)
    targets = torch.from_numpy(classes)
    log.info(
        "video judge: %.2f M parameters, %d training clips, %d classes (%d seen)",
        sum(p.numel() for p in model.parameters()) / 1e6, len(train_rows), len(SCENE_CLASSES),
        len(np.unique(classes[train_rows])),
    )
    reach = settings["size"] // 8

    def plan(epoch, rng):
        order = rng.permutation(train_rows)
        return [np.sort(b) for b in np.array_split(order, max(1, len(order) // phase.batch_size))]

    def loss_fn(model, rows):
        rng = np.random.default_rng(rows)
        batch = torch.stack([p.roll(tuple(int(s) for s in rng.integers(-reach, reach + 1, 2)), dims=(-2, -1)) for p in pixels[rows]])
        logits = model(pixel_values=batch.to(phase.device)).logits
        loss = F.cross_entropy(logits, targets[rows].to(phase.device))
        return loss, {"cross_entropy": loss.item()}

    def validate(model):
        return {"accuracy": _accuracy(model, pixels[val_rows], classes[val_rows])} if len(val_rows) else {}

    scores = {}

    def save(model, log_csv):
        test_clips, test_ids = read_clip_array(test_clips_path, "frames")
        test_classes = clip_scene_classes(ground_truth, test_ids, **labelling)
        scores["test_accuracy"] = _accuracy(model, _pixels(processor, test_clips), test_classes)
        scores["test_chance"] = float(np.bincount(test_classes).max() / len(test_classes))
        with atomic_directory(out_dir) as folder:
            model.save_pretrained(folder, safe_serialization=True)
            processor.save_pretrained(folder)
            record = {**scores, "settings": settings, "labelling": labelling, "log": str(log_csv)}
            (folder / "training.json").write_text(json.dumps(record, indent=2))
        log.info("video judge on ground-truth test clips: accuracy %.3f (majority class %.3f) -> %s",
                 scores["test_accuracy"], scores["test_chance"], out_dir)

    settings_text = json.dumps([without_checkpointing(settings), labelling], sort_keys=True)  # not how often it saves
    identity = hashlib.sha256(clips.tobytes() + classes.tobytes() + settings_text.encode()).hexdigest()
    train(model, loss_fn, plan, phase, state_dir, validate, "video judge", identity=identity[:16], save=save)
    return scores
