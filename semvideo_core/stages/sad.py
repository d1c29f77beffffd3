"""Stages of rules/sad.smk: caption embeddings (embed_text), SAD pretraining, fine-tuning and decoding
(train_sad, finetune_sad, decode_sad), the ridge baseline (ridge) and test-set retrieval (semantic_retrieval).

fMRI (preprocess_fmri outputs) and caption embeddings (embed_text outputs) are paired by clip id. Training samples
are single presentations (train [N, reps, V] gives N x reps samples); pretraining holds out a seeded `val_fraction`
of the training clips for the per-epoch validation (MLP output: MSE and top-1 retrieval among the held-out clips)
and records them in the model, so that fine-tuning holds out the same clips. Test presentations are already
averaged by preprocessing.
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from ..backends.text import load_text_encoder
from ..io import models as model_store
from ..io.atomic import atomic_output
from ..io.captions import read_captions
from ..io.embeddings import embedding_keys, load_embeddings, write_embeddings
from ..io.fmri import read_fmri
from ..metrics.regression import feature_correlation, r_squared
from ..metrics.retrieval import chance_top1, top1_accuracy
from ..models import losses
from ..models import sad as sad_model
from ..models.losses import SADLossWeights, sad_loss
from ..models.ridge import fit_ridge, predict_ridge
from ..models.sad import SAD, SADConfig
from ..training import TrainConfig, presentation_batches, train, validation_split

log = logging.getLogger(__name__)
DTYPES = {"float16": torch.float16, "float32": torch.float32}
RIDGE_TARGETS = ("flattened", "pooled")


# -- embed_text --------------------------------------------------------------------------------------------------


def embed_text(captions_csv, encoder: dict, settings: dict, out_path) -> None:
    """One caption level -> `embeds` [N, tokens, dim] in the CSV's clip order and the empty caption's embedding
    (constant `empty` [1, tokens, dim]), with `models.text_encoder` ({backend, path}) and the `embed` settings
    (dtype, batch_size, device, and tokens for minilm, the one encoder whose length is a setting)."""
    tokens = {"tokens": settings["tokens"]} if "tokens" in settings else {}
    model = load_text_encoder(encoder["backend"], encoder["path"], **tokens)
    texts = read_captions(captions_csv)
    clip_ids, batch = list(texts), settings["batch_size"]
    chunks = []
    with tqdm(total=len(clip_ids), desc=f"embed {Path(captions_csv).stem}", unit="caption", file=sys.stderr) as bar:
        for start in range(0, len(clip_ids), batch):
            captions = [texts[c] for c in clip_ids[start : start + batch]]
            chunks.append(model.encode(captions, batch, settings["device"]).to(DTYPES[settings["dtype"]]))
            bar.update(len(captions))
    embeds = torch.cat(chunks) if chunks else torch.empty(0, model.tokens, model.dim, dtype=DTYPES[settings["dtype"]])
    empty = model.encode([""], 1, settings["device"]).to(DTYPES[settings["dtype"]])  # MAD's null condition
    encoder_info = {"backend": model.name, "tokens": model.tokens, "dim": model.dim}
    extra = {"encoder": encoder_info, "captions": str(captions_csv)}
    write_embeddings(out_path, {"embeds": embeds}, clip_ids, extra, constants={"empty": empty})
    log.info("%s: %d captions -> %s %s", out_path, len(clip_ids), tuple(embeds.shape), settings["dtype"])


# -- pairing fMRI with targets -----------------------------------------------------------------------------------


@dataclass
class SubjectData:
    name: str
    train: torch.Tensor  # [N, reps, V]
    train_targets: torch.Tensor  # [N, T, D]
    train_ids: list[str]
    test: torch.Tensor  # [N_test, V]
    test_targets: torch.Tensor  # [N_test, T, D]
    test_ids: list[str]


def load_subject(fmri_path, embeds_path) -> SubjectData:
    """One subject's fMRI with the embedding of every clip, matched by clip id (a missing clip names both files)."""
    fmri = read_fmri(fmri_path)
    embeds, ids = load_embeddings(embeds_path)
    index = {clip: i for i, clip in enumerate(ids)}
    missing = [c for c in fmri.train_ids + fmri.test_ids if c not in index]
    if missing:
        raise ValueError(f"{fmri_path}: {len(missing)} clips have no caption embedding in {embeds_path}: {missing[:5]}")
    rows = lambda clips: embeds[[index[c] for c in clips]]  # noqa: E731
    return SubjectData(
        Path(fmri_path).stem,
        torch.from_numpy(fmri.train),
        rows(fmri.train_ids),
        fmri.train_ids,
        torch.from_numpy(fmri.test),
        rows(fmri.test_ids),
        fmri.test_ids,
    )


# -- training ----------------------------------------------------------------------------------------------------


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


def _data_hash(subjects: list[SubjectData], settings: dict) -> str:
    """Identity of the training data and stage settings (part of the checkpoint's fingerprint)."""
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True).encode())
    for subject in subjects:
        digest.update(subject.name.encode())
        digest.update(subject.train.numpy().tobytes())
        digest.update(subject.train_targets.numpy().tobytes())
        digest.update(json.dumps(subject.train_ids).encode())
    return digest.hexdigest()[:16]


def _fit(model, subjects, val_ids, loss: dict, phase: dict, state_dir, name, save, stop_after_steps=None):
    config = TrainConfig(**phase)
    held_out = set(val_ids)
    val_clips = np.array([i for i, c in enumerate(subjects[0].train_ids) if c in held_out], dtype=int)
    train_clips = np.array([i for i, c in enumerate(subjects[0].train_ids) if c not in held_out], dtype=int)
    weights = SADLossWeights(**loss)

    def loss_fn(model, batch):
        s, clips, reps = batch
        subject = subjects[s]
        return sad_loss(model, subject.train[clips, reps], subject.name, subject.train_targets[clips], weights)

    return train(
        model,
        loss_fn,
        presentation_batches([s.train.shape[1] for s in subjects], train_clips, config.batch_size),
        config,
        state_dir,
        _validator(subjects, val_clips),
        name,
        stop_after_steps,
        identity=_data_hash(subjects, {"loss": loss, "val_ids": sorted(val_ids)}),
        code=(sad_model, losses),
        save=save,
    )


def save_model(model: SAD, path: str | Path, extra: dict) -> None:
    """Weights in safetensors, the model config (and `extra`) in a JSON file beside them."""
    model_store.save_model(model, path, "sad", extra)


def load_model(path: str | Path) -> tuple[SAD, dict]:
    """(the model, rebuilt from its JSON config and weights; the JSON's other fields). A model saved before
    `attention_dropout` existed dropped attention weights at its `dropout`, and a fine-tune of it keeps doing so."""

    def build(config: dict) -> SAD:
        return SAD(SADConfig(**{"attention_dropout": config.get("dropout", 0.0), **config}))

    return model_store.load_model(path, "sad", build)


def train_sad(fmri_paths: list, embeds_path, settings: dict, out_path, state_dir, **kwargs) -> SAD:
    """Multi-subject pretraining: one SAD with a projection per subject, trained on all subjects' data.
    `settings`: the config's sad.model, sad.loss, sad.pretrain and sad.val_fraction."""
    subjects = [load_subject(p, embeds_path) for p in fmri_paths]
    phase = TrainConfig(**settings["pretrain"])
    _, val_rows = validation_split(len(subjects[0].train_ids), settings["val_fraction"], phase.seed)
    val_ids = [subjects[0].train_ids[i] for i in val_rows]
    targets = subjects[0].train_targets
    config = SADConfig(
        voxels={s.name: s.train.shape[-1] for s in subjects},
        tokens=targets.shape[1],
        dim=targets.shape[2],
        **settings["model"],
    )
    torch.manual_seed(phase.seed)
    model = SAD(config)
    held_out = set(val_ids)
    model.set_target_statistics(targets[[i for i, c in enumerate(subjects[0].train_ids) if c not in held_out]])
    log.info("SAD %s: %.2f M parameters", config.to_dict(), sum(p.numel() for p in model.parameters()) / 1e6)

    def save(model, log_csv):
        save_model(
            model, out_path, {"phase": "pretrain", "val_clips": val_ids, "settings": settings, "log": str(log_csv)}
        )

    _fit(model, subjects, val_ids, settings["loss"], settings["pretrain"], state_dir, "SAD pretrain", save, **kwargs)
    return model


def finetune_sad(pretrained_path, fmri_path, embeds_path, settings: dict, out_path, state_dir, **kwargs) -> SAD:
    """Per-subject fine-tuning of the pretrained SAD on one subject's data (all weights train), holding out the
    clips that pretraining held out. `settings`: the config's sad.loss and sad.finetune."""
    subject = load_subject(fmri_path, embeds_path)
    model, pretrained = load_model(pretrained_path)
    if subject.name not in model.config.voxels:
        raise ValueError(f"{pretrained_path}: pretrained without subject {subject.name}")
    val_ids = pretrained["val_clips"]
    name = f"SAD finetune {subject.name}"

    def save(model, log_csv):
        extra = {"phase": "finetune", "subject": subject.name, "val_clips": val_ids, "settings": settings}
        save_model(model, out_path, {**extra, "log": str(log_csv)})

    _fit(model, [subject], val_ids, settings["loss"], settings["finetune"], state_dir, name, save, **kwargs)
    return model


# -- decoding ----------------------------------------------------------------------------------------------------


def decode_sad(model_path, fmri_path, embeds_path, out_path, decode: dict, split: str = "test") -> float:
    """Predicted embeddings of every clip of one subject's `split` (`embeds`: refined when decode.refine, else the
    MLP's; `embeds_mlp`: the MLP's); `decode`: refine, steps, strength, seed. Training clips are decoded from their
    presentations' average (MAD's `sad_decoded` motion source). -> top-1 retrieval."""
    if split not in ("train", "test"):
        raise ValueError(f"split must be train or test, got {split!r}")
    model, _ = load_model(model_path)
    subject = load_subject(fmri_path, embeds_path)
    voxels, ids, targets = (
        (subject.test, subject.test_ids, subject.test_targets)
        if split == "test"
        else (subject.train.mean(1), subject.train_ids, subject.train_targets)
    )
    mlp = model.decode(voxels, subject.name, refine=False)
    if decode["refine"]:  # steps, strength and seed are read only here (the rule passes them only then)
        generator = torch.Generator().manual_seed(decode["seed"])
        refined = model.decode(voxels, subject.name, True, decode["steps"], decode["strength"], generator)
    else:
        refined = mlp.clone()  # stored as its own tensor
    write_embeddings(out_path, {"embeds": refined, "embeds_mlp": mlp}, ids, {"model": str(model_path), "split": split})
    top1, chance = top1_accuracy(refined, targets), chance_top1(targets)
    log.info("%s: %d %s clips decoded; top-1 retrieval %.3f (chance %.3f)", out_path, len(refined), split, top1, chance)
    return top1


def ridge(fmri_path, embeds_path, out_path, settings: dict) -> float:
    """Variant `ridge`: fit on the subject's training clips (presentations averaged), predict its test clips;
    `settings`: the config's ridge section (alphas, target). -> top-1 retrieval among the test clips."""
    if settings["target"] not in RIDGE_TARGETS:
        raise ValueError(f"ridge target must be one of {RIDGE_TARGETS}, got {settings['target']!r}")
    subject = load_subject(fmri_path, embeds_path)
    targets = subject.train_targets
    if settings["target"] == "pooled":
        targets = targets.mean(1, keepdim=True)
    model, scaling = fit_ridge(subject.train.mean(1).numpy(), targets.flatten(1).numpy(), settings["alphas"])
    predicted = torch.from_numpy(predict_ridge(model, scaling, subject.test.numpy())).float()
    predicted = predicted.view(-1, *targets.shape[1:])
    extra = {"alpha": float(model.alpha_), "target": settings["target"]}
    write_embeddings(out_path, {"embeds": predicted}, subject.test_ids, extra)
    top1 = top1_accuracy(predicted, subject.test_targets)
    log.info("%s: ridge alpha %.3g (%s); top-1 retrieval %.3f", out_path, model.alpha_, settings["target"], top1)
    return top1


# -- semantic_retrieval ------------------------------------------------------------------------------------------


def semantic_retrieval(prediction_paths: list, embed_paths: list, out_path) -> list[dict]:
    """CSV of variant, subject, level, n_test, top1, chance, r, r2 for predictions at
    predictions/{dataset}/{variant}/{subject}/{level}.safetensors, scored against the embed_text output of their
    level (r: the mean per-feature correlation across test clips; r2: variance-weighted R², below 0 when the decodes
    are farther from the truth than the mean target); SAD's MLP-only estimate (`embeds_mlp`) is scored as variant
    sad_mlp."""
    embed_files = {Path(p).stem: p for p in embed_paths}
    targets = {level: load_embeddings(p) for level, p in embed_files.items()}
    rows = []
    for path in map(Path, prediction_paths):
        level, subject, variant = path.stem, path.parent.name, path.parent.parent.name
        if level not in targets:
            raise ValueError(f"{path}: no caption embeddings of level {level!r} among {sorted(embed_files)}")
        embeds, ids = targets[level]
        index = {c: i for i, c in enumerate(ids)}
        keys = embedding_keys(path)
        for key, suffix in (("embeds", ""), ("embeds_mlp", "_mlp")):
            if key not in keys:
                continue
            predicted, clip_ids = load_embeddings(path, key)
            missing = [c for c in clip_ids if c not in index]
            if missing:
                raise ValueError(f"{path}: clips {missing[:5]} have no embedding in {embed_files[level]}")
            own = embeds[[index[c] for c in clip_ids]]
            rows.append(
                {
                    "variant": variant + suffix,
                    "subject": subject,
                    "level": level,
                    "n_test": len(clip_ids),
                    "top1": round(top1_accuracy(predicted, own), 4),
                    "chance": round(chance_top1(own), 4),
                    "r": round(feature_correlation(predicted, own), 4),
                    "r2": round(r_squared(predicted, own), 4),
                }
            )
    with atomic_output(out_path) as tmp, open(tmp, "w", newline="") as handle:
        writer = csv.DictWriter(
            handle, fieldnames=["variant", "subject", "level", "n_test", "top1", "chance", "r", "r2"]
        )
        writer.writeheader()
        writer.writerows(rows)
    return rows
