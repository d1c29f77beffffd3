"""Stages train_sad, finetune_sad and decode_sad: fMRI (preprocess_fmri outputs) and caption embeddings
(embed_text outputs) paired by clip id; multi-subject pretraining, per-subject fine-tuning, test-set decoding.

Training samples are single presentations (train [N, reps, V] gives N x reps samples); a seeded `val_fraction` of
the training clips is held out for the per-epoch validation (MLP output: MSE and top-1 retrieval among the
held-out clips). Test presentations are already averaged by preprocessing.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path

import h5py
import numpy as np
import torch
from safetensors.torch import load_file, save_file

from .atomic import atomic_output
from .embed import load_embeddings
from .metrics.retrieval import chance_top1, top1_accuracy
from .models.losses import SADLossWeights, sad_loss
from .models.sad import SAD, SADConfig
from .training import TrainConfig, train

log = logging.getLogger(__name__)


@dataclass
class SubjectData:
    name: str
    train: torch.Tensor  # [N, reps, V]
    train_targets: torch.Tensor  # [N, T, D]
    test: torch.Tensor  # [N_test, V]
    test_targets: torch.Tensor  # [N_test, T, D]
    test_ids: list[str]


def _ids(dataset) -> list[str]:
    return [c.decode() if isinstance(c, bytes) else str(c) for c in dataset[:]]


def load_subject(fmri_path: str | Path, embeds: torch.Tensor, embed_ids: list[str]) -> SubjectData:
    """One subject's fMRI with the embedding of every clip, matched by clip id (a missing clip names the file)."""
    index = {clip: i for i, clip in enumerate(embed_ids)}
    with h5py.File(fmri_path, "r") as h5:
        train = torch.from_numpy(np.asarray(h5["train"], dtype=np.float32))
        test = torch.from_numpy(np.asarray(h5["test"], dtype=np.float32))
        train_ids, test_ids = _ids(h5["train_clip_id"]), _ids(h5["test_clip_id"])
    if train.dim() == 2:  # presentations averaged by preprocessing
        train = train[:, None]
    missing = [c for c in train_ids + test_ids if c not in index]
    if missing:
        raise ValueError(f"{fmri_path}: {len(missing)} clips have no caption embedding, e.g. {missing[:5]}")
    rows = lambda ids: embeds[[index[c] for c in ids]]  # noqa: E731
    return SubjectData(Path(fmri_path).stem, train, rows(train_ids), test, rows(test_ids), test_ids)


@dataclass(frozen=True)
class SADStageConfig:
    """The config's `sad` section: model sizes, loss weights, the two training phases."""

    model: dict = field(default_factory=dict)  # SADConfig fields other than voxels, tokens, dim
    loss: dict = field(default_factory=dict)  # SADLossWeights fields
    pretrain: dict = field(default_factory=dict)  # TrainConfig fields
    finetune: dict = field(default_factory=dict)
    val_fraction: float = 0.1
    refine: bool = True  # decode through the Refineformer (else the MLP output)
    decode_seed: int = 0


def stage_config(settings: dict) -> SADStageConfig:
    """From the config's `sad` section (levels and variants are the workflow's business)."""
    keep = {k: v for k, v in settings.items() if k not in ("levels", "variants")}
    return SADStageConfig(**keep)


def validation_split(n_clips: int, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    order = np.random.default_rng([seed, 7]).permutation(n_clips)
    n_val = int(round(fraction * n_clips))
    return np.sort(order[n_val:]), np.sort(order[:n_val])


def _plan(subjects: list[SubjectData], train_clips: np.ndarray, batch_size: int):
    """Batches of one subject each ((subject index, clip rows, presentation rows)), subjects interleaved."""

    def plan(epoch: int, rng: np.random.Generator):
        batches = []
        for s, subject in enumerate(subjects):
            reps = subject.train.shape[1]
            samples = np.stack(np.meshgrid(train_clips, np.arange(reps), indexing="ij"), -1).reshape(-1, 2)
            samples = samples[rng.permutation(len(samples))]
            batches += [
                (s, chunk[:, 0], chunk[:, 1]) for chunk in np.array_split(samples, max(1, len(samples) // batch_size))
            ]
        return [batches[i] for i in rng.permutation(len(batches))]

    return plan


def _validator(subjects: list[SubjectData], val_clips: np.ndarray):
    def validate(model: SAD) -> dict:
        if not len(val_clips):
            return {}
        mse, top1 = [], []
        with torch.no_grad():
            for subject in subjects:
                voxels = subject.train[val_clips].mean(1)
                targets = subject.train_targets[val_clips]
                prediction = model.denormalize(model.backbone(voxels, subject.name))
                mse.append(torch.nn.functional.mse_loss(model.normalize(prediction), model.normalize(targets)).item())
                top1.append(top1_accuracy(prediction, targets))
        return {"mse": float(np.mean(mse)), "top1": float(np.mean(top1))}

    return validate


def _split(subjects: list[SubjectData], stage: SADStageConfig) -> tuple[np.ndarray, np.ndarray]:
    """Training and validation clips, the same in pretraining and fine-tuning (seeded by the pretraining seed)."""
    return validation_split(len(subjects[0].train), stage.val_fraction, TrainConfig(**stage.pretrain).seed)


def _fit(model, subjects, stage: SADStageConfig, phase: dict, state_dir, name, stop_after_steps=None):
    config = TrainConfig(**phase)
    train_clips, val_clips = _split(subjects, stage)
    weights = SADLossWeights(**stage.loss)

    def loss_fn(model, batch):
        s, clips, reps = batch
        subject = subjects[s]
        return sad_loss(model, subject.train[clips, reps], subject.name, subject.train_targets[clips], weights)

    return train(
        model,
        loss_fn,
        _plan(subjects, train_clips, config.batch_size),
        config,
        state_dir,
        _validator(subjects, val_clips),
        name,
        stop_after_steps,
        identity=_data_hash(subjects, stage),
    )


def _data_hash(subjects: list[SubjectData], stage: SADStageConfig) -> str:
    """Identity of the training data and stage settings: a checkpoint of other data is never resumed."""
    digest = hashlib.sha256(json.dumps(asdict(stage), sort_keys=True).encode())
    for subject in subjects:
        digest.update(subject.name.encode())
        digest.update(subject.train.numpy().tobytes())
        digest.update(subject.train_targets.numpy().tobytes())
    return digest.hexdigest()[:16]


def save_model(model: SAD, path: str | Path, extra: dict | None = None) -> None:
    """Weights in safetensors, the config (and `extra`) in a JSON file beside them."""
    path = Path(path)
    with atomic_output(path) as tmp:
        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(tmp))
    with atomic_output(path.with_suffix(".json")) as tmp:
        tmp.write_text(json.dumps({"sad": model.config.to_dict(), **(extra or {})}, indent=2))


def load_model(path: str | Path) -> SAD:
    path = Path(path)
    settings = json.loads(path.with_suffix(".json").read_text())["sad"]
    model = SAD(SADConfig(**settings))
    model.load_state_dict(load_file(str(path)))
    return model.eval()


def pretrain_sad(fmri_paths: list[str], embeds_path: str, stage: SADStageConfig, out_path, state_dir, **kwargs) -> SAD:
    """Multi-subject pretraining: one SAD with a projection per subject, trained on all subjects' data."""
    embeds, ids = load_embeddings(embeds_path)
    subjects = [load_subject(p, embeds, ids) for p in fmri_paths]
    sad_config = SADConfig(
        voxels={s.name: s.train.shape[-1] for s in subjects},
        tokens=embeds.shape[1],
        dim=embeds.shape[2],
        **stage.model,
    )
    torch.manual_seed(TrainConfig(**stage.pretrain).seed)
    model = SAD(sad_config)
    train_clips, _ = _split(subjects, stage)
    model.set_target_statistics(subjects[0].train_targets[train_clips])  # every subject saw the same clips
    log.info("SAD %s: %.2f M parameters", sad_config.to_dict(), sum(p.numel() for p in model.parameters()) / 1e6)
    log_csv = _fit(model, subjects, stage, stage.pretrain, state_dir, "SAD pretrain", **kwargs)
    save_model(model, out_path, {"phase": "pretrain", "stage": asdict(stage), "log": str(log_csv)})
    return model


def finetune_sad(pretrained_path, fmri_path, embeds_path, stage: SADStageConfig, out_path, state_dir, **kwargs) -> SAD:
    """Per-subject fine-tuning of the pretrained SAD on one subject's data (all weights train)."""
    embeds, ids = load_embeddings(embeds_path)
    subject = load_subject(fmri_path, embeds, ids)
    model = load_model(pretrained_path)
    if subject.name not in model.config.voxels:
        raise ValueError(f"{pretrained_path}: pretrained without subject {subject.name}")
    log_csv = _fit(model, [subject], stage, stage.finetune, state_dir, f"SAD finetune {subject.name}", **kwargs)
    save_model(
        model, out_path, {"phase": "finetune", "subject": subject.name, "stage": asdict(stage), "log": str(log_csv)}
    )
    return model


def decode_sad(model_path, fmri_path, embeds_path, out_path, refine: bool = True, seed: int = 0) -> float:
    """Predicted embeddings of every test clip of one subject; -> top-1 retrieval among the test clips."""
    model = load_model(model_path)
    embeds, ids = load_embeddings(embeds_path)
    subject = load_subject(fmri_path, embeds, ids)
    generator = torch.Generator().manual_seed(seed)
    refined = model.decode(subject.test, subject.name, refine=refine, generator=generator)
    mlp = model.decode(subject.test, subject.name, refine=False)
    write_predictions(out_path, {"embeds": refined, "embeds_mlp": mlp}, subject.test_ids, {"model": str(model_path)})
    top1 = top1_accuracy(refined, subject.test_targets)
    chance = chance_top1(subject.test_targets)
    log.info("%s: %d test clips decoded; top-1 retrieval %.3f (chance %.3f)", out_path, len(refined), top1, chance)
    return top1


def write_predictions(path, tensors: dict[str, torch.Tensor], clip_ids: list[str], extra: dict | None = None) -> None:
    metadata = {"clip_ids": json.dumps(clip_ids), **{k: json.dumps(v) for k, v in (extra or {}).items()}}
    with atomic_output(path) as tmp:
        save_file({k: v.float().contiguous() for k, v in tensors.items()}, str(tmp), metadata=metadata)
