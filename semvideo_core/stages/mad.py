"""Stages of rules/mad.smk: the demo VAE (train_vae), clip latents (encode_latents), MAD pretraining, fine-tuning
and decoding to motion frames (train_mad, finetune_mad, decode_mad).

MAD pairs each subject's fMRI (preprocess_fmri) with the VAE latents of the same clips (encode_latents) and the
motion-level caption embeddings (embed_text), by clip id. While training, the motion tokens it attends to come
from `mad.motion.source`: `truth` (the training captions' embeddings), `noisy_truth` (those plus Gaussian noise
of `noise` x the per-channel spread) or `sad_decoded` (SAD's decodes of the training clips); with probability
`drop` a sample gets the empty caption's embedding instead (the null condition of the `no_motion` variant). At
inference the motion tokens are always SAD's decodes of the test clips.
"""

from __future__ import annotations

import hashlib
import json
import logging
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from ..backends.vae import (
    build_demo_vae,
    decode_latents,
    downsampling,
    encode_frames,
    load_vae,
)
from ..config import without_checkpointing
from ..data.video import resize_frames
from ..io import models as model_store
from ..io.atomic import atomic_directory
from ..io.clip_arrays import read_clip_array, write_clip_array
from ..io.embeddings import load_constant, load_embeddings
from ..io.fmri import read_fmri
from ..metrics.pixel import psnr, ssim
from ..models import losses
from ..models import mad as mad_model
from ..models import sad as sad_model
from ..models.losses import MADLossWeights, mad_loss
from ..models.mad import MAD, MADConfig, init_shared_space
from ..models.ridge import fit_ridge, predict_ridge
from ..pixels import to_pixels, to_uint8
from ..training import TrainConfig, block_validation_split, presentation_batches, train, validation_split

log = logging.getLogger(__name__)
MOTION_SOURCES = ("truth", "noisy_truth", "sad_decoded")
VARIANTS = ("full", "no_motion", "ridge", "oracle")
VAE_VALIDATION_FRAMES = 256  # held-out frames scored after every VAE epoch


def _train_frames(clips_path, size: int) -> tuple[np.ndarray, list[str]]:
    """All frames of a clip file at the VAE's size: uint8 [N, T, size, size, 3] and the clip ids."""
    frames, ids = read_clip_array(clips_path, "frames")
    return resize_frames(frames, size), ids


# -- train_vae ---------------------------------------------------------------------------------------------------


def train_vae(clips_path, settings: dict, out_dir, state_dir, **kwargs) -> dict:
    """The demo VAE: a small AutoencoderKL trained on random crops of the training clips' frames (held-out clips
    excluded): L1 + MSE of the reconstruction from the posterior mean, the same for blends of two frames' latents
    against the blend of the frames (latent mixup, x `mix_weight`: MAD's predictions under uncertainty are blends,
    and must decode to blurred frames rather than artifacts, as SD's VAE does), and a small KL term. Saved with
    save_pretrained in `out_dir` with the scaling factor that gives its latents unit variance. `settings`: the
    config's vae section and latents.size. -> held-out PSNR and SSIM."""
    size, crop = settings["size"], min(settings["crop"], settings["size"])
    frames, ids = _train_frames(clips_path, size)
    phase = TrainConfig(**settings["train"])
    train_rows, val_rows = validation_split(len(ids), settings["val_fraction"], phase.seed)
    train_frames = frames[train_rows].reshape(-1, size, size, 3)
    val_frames = frames[val_rows].reshape(-1, size, size, 3)
    val_frames = val_frames[
        np.linspace(0, len(val_frames) - 1, min(VAE_VALIDATION_FRAMES, len(val_frames))).astype(int)
    ]
    model = settings["model"]
    torch.manual_seed(phase.seed)
    vae = build_demo_vae(
        model["block_out_channels"], model["layers_per_block"], model["latent_channels"], model["norm_num_groups"], size
    )
    log.info(
        "demo VAE: %.2f M parameters, %d training frames",
        sum(p.numel() for p in vae.parameters()) / 1e6,
        len(train_frames),
    )
    kl_weight, mix_weight, factor = settings["kl_weight"], settings["mix_weight"], downsampling(vae)
    if crop % factor:
        raise ValueError(f"vae.crop {crop} must be a multiple of the VAE's downsampling {factor}")

    def plan(epoch, rng):
        order = rng.permutation(len(train_frames))
        batches = np.array_split(order, max(1, len(order) // phase.batch_size))
        return [(np.sort(b), *rng.integers(0, size - crop + 1, 2)) for b in batches]

    def loss_fn(vae, batch):
        rows, top, left = batch
        x = to_pixels(train_frames[rows, top : top + crop, left : left + crop]).to(vae.device)
        posterior = vae.encode(x).latent_dist
        z = posterior.mode()
        # Latent mixup: blends of two frames' latents must decode to the same blend of the frames.
        half = len(x) // 2
        weight = torch.rand(half, 1, 1, 1, device=x.device)
        z_mix = weight * z[:half] + (1 - weight) * z[half : 2 * half]
        x_mix = weight * x[:half] + (1 - weight) * x[half : 2 * half]
        decoded = vae.decode(torch.cat([z, z_mix])).sample
        reconstruction, mixed = decoded[: len(x)], decoded[len(x) :]
        l1, mse = (reconstruction - x).abs().mean(), (reconstruction - x).pow(2).mean()
        mix = (mixed - x_mix).abs().mean() + (mixed - x_mix).pow(2).mean() if half else l1.new_zeros(())
        kl = posterior.kl().mean() / posterior.mean[0].numel()
        loss = l1 + mse + mix_weight * mix + kl_weight * kl
        return loss, {"l1": l1.item(), "mse": mse.item(), "mix": mix.item(), "kl": kl.item()}

    last_validation = {}  # the latest weights' scores: the final weights' when training has just ended

    def validate(vae):
        reconstructed = _reconstruct(vae, val_frames, phase.batch_size)
        last_validation.update(
            psnr=float(psnr(reconstructed, val_frames).mean()), ssim=float(ssim(reconstructed, val_frames).mean())
        )
        return dict(last_validation)

    scores = {}

    def save(vae, log_csv):
        sample = train_frames[np.linspace(0, len(train_frames) - 1, min(2048, len(train_frames))).astype(int)]
        unscaled = torch.cat([encode_frames(vae, sample[i : i + 256]) for i in range(0, len(sample), 256)])
        unscaled /= vae.config.scaling_factor  # encode_frames applied the current (initial) factor
        vae.register_to_config(scaling_factor=float(1 / unscaled.std()))
        # train() scored these very weights after the last epoch (the factor does not touch a reconstruction); a job
        # resumed past that scores them anew
        scores.update(last_validation or validate(vae))
        with atomic_directory(out_dir) as partial:
            vae.save_pretrained(partial, safe_serialization=True)
            record = {"held_out": scores, "val_clips": [ids[i] for i in val_rows], "settings": settings}
            (Path(partial) / "training.json").write_text(json.dumps({**record, "log": str(log_csv)}, indent=2))
        log.info(
            "demo VAE: held-out PSNR %.2f dB, SSIM %.3f; scaling factor %.4f -> %s",
            scores["psnr"],
            scores["ssim"],
            vae.config.scaling_factor,
            out_dir,
        )

    settings_text = json.dumps(without_checkpointing(settings), sort_keys=True)  # how often it saves is not the job
    identity = hashlib.sha256(frames[train_rows].tobytes() + settings_text.encode()).hexdigest()
    train(vae, loss_fn, plan, phase, state_dir, validate, "demo VAE", identity=identity[:16], save=save, **kwargs)
    return scores


@torch.inference_mode()
def _reconstruct(vae, frames: np.ndarray, batch: int) -> np.ndarray:
    vae.eval()
    out = [
        to_uint8(vae.decode(vae.encode(to_pixels(frames[i : i + batch]).to(vae.device)).latent_dist.mode()).sample)
        for i in range(0, len(frames), batch)
    ]
    vae.train()
    return np.concatenate(out)


# -- encode_latents ----------------------------------------------------------------------------------------------


def encode_latents(clips_path, vae_path, settings: dict, out_path) -> tuple[int, ...]:
    """Every clip of a clip file -> scaled VAE latents [N, T, C, h, w] float16, batched by frames, no gradients,
    half precision on GPU. `settings`: the config's latents section (size, batch_size, device, dtype)."""
    vae = load_vae(vae_path, settings["device"], settings["dtype"])
    frames, ids = read_clip_array(clips_path, "frames")
    n, frames_per_clip = frames.shape[:2]
    clips_per_batch = max(1, settings["batch_size"] // frames_per_clip)
    chunks = []
    with tqdm(total=n, desc=f"encode {Path(clips_path).stem}", unit="clip", file=sys.stderr) as bar:
        for start in range(0, n, clips_per_batch):
            batch = resize_frames(frames[start : start + clips_per_batch], settings["size"])
            latents = encode_frames(vae, batch.reshape(-1, *batch.shape[2:]))
            chunks.append(latents.view(len(batch), frames_per_clip, *latents.shape[1:]).half().numpy())
            bar.update(len(batch))
    latents = np.concatenate(chunks) if chunks else np.zeros((0, frames_per_clip, 1, 1, 1), np.float16)
    attrs = {"vae": str(vae_path), "scaling_factor": vae.config.scaling_factor, "size": settings["size"]}
    write_clip_array(out_path, "latents", latents, ids, attrs)
    log.info("%s: %d clips -> latents %s float16", out_path, n, tuple(latents.shape[1:]))
    return latents.shape


# -- pairing fMRI with latents and motion tokens -----------------------------------------------------------------


@dataclass
class MADSubject:
    name: str
    train: torch.Tensor  # [N, reps, V]
    train_latents: torch.Tensor  # [N, T, C, h, w]
    train_motion: torch.Tensor  # [N, L, D] the motion tokens seen while training
    train_ids: list[str]
    test: torch.Tensor  # [N_test, V]
    test_ids: list[str]


def _embeddings_for(path, clip_ids: list[str], key: str = "embeds") -> torch.Tensor:
    embeds, ids = load_embeddings(path, key)
    index = {clip: i for i, clip in enumerate(ids)}
    missing = [c for c in clip_ids if c not in index]
    if missing:
        raise ValueError(f"{path}: {len(missing)} clips have no motion embedding: {missing[:5]}")
    return embeds[[index[c] for c in clip_ids]]


def load_mad_subject(fmri_path, latents_path, motion_path) -> MADSubject:
    """One subject's fMRI with the latents and motion tokens of its training clips, matched by clip id."""
    fmri = read_fmri(fmri_path)
    latents, _ = read_clip_array(latents_path, "latents", fmri.train_ids)
    return MADSubject(
        Path(fmri_path).stem,
        torch.from_numpy(fmri.train),
        torch.from_numpy(latents.astype(np.float32)),
        _embeddings_for(motion_path, fmri.train_ids),
        fmri.train_ids,
        torch.from_numpy(fmri.test),
        fmri.test_ids,
    )


def _check_latents(model: MAD, latents: torch.Tensor, path) -> None:
    c = model.config
    expected = (c.frames, c.channels, c.height, c.width)
    if tuple(latents.shape[1:]) != expected:
        raise ValueError(f"{path}: latents of shape {tuple(latents.shape[1:])}, but the MAD model expects {expected}")


# -- training ----------------------------------------------------------------------------------------------------


def _condition_sampler(motion: dict, empty: torch.Tensor, spread: torch.Tensor):
    """-> motion tokens for a batch of training clips [B, L, D], per mad.motion (noise, drop); torch's RNG, so a
    resumed run draws the same."""

    def condition(tokens: torch.Tensor) -> torch.Tensor:
        if motion["source"] == "noisy_truth":
            tokens = tokens + motion["noise"] * spread * torch.randn_like(tokens)
        if motion["drop"]:
            dropped = torch.rand(len(tokens)) < motion["drop"]
            tokens = torch.where(dropped[:, None, None], empty.expand_as(tokens), tokens)
        return tokens

    return condition


def _identity(subjects: list[MADSubject], settings: dict) -> str:
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode())
    for s in subjects:
        for tensor in (s.train, s.train_latents, s.train_motion):
            digest.update(tensor.numpy().tobytes())
        digest.update((s.name + json.dumps(s.train_ids)).encode())
    return digest.hexdigest()[:16]


def _fit(model: MAD, subjects, val_ids, empty, settings: dict, phase: dict, state_dir, name, save, **kwargs):
    config = TrainConfig(**phase)
    held_out = set(val_ids)
    train_clips = np.array([i for i, c in enumerate(subjects[0].train_ids) if c not in held_out], dtype=int)
    val_clips = np.array([i for i, c in enumerate(subjects[0].train_ids) if c in held_out], dtype=int)
    weights = MADLossWeights(**settings["loss"])
    all_motion = torch.cat([s.train_motion[train_clips] for s in subjects])
    condition = _condition_sampler(settings["motion"], empty, all_motion.std(0, keepdim=True)[0])
    device = torch.device(config.device)

    def loss_fn(model, batch):
        s, clips, reps = batch
        subject = subjects[s]
        voxels = subject.train[clips, reps].to(device)
        motion = condition(subject.train_motion[clips]).to(device)
        predicted = model(voxels, subject.name, motion)
        return mad_loss(predicted, subject.train_latents[clips].to(device), model.latent_mean, weights)

    @torch.no_grad()
    def validate(model):
        if not len(val_clips):
            return {}
        l1, corr = [], []
        for subject in subjects:
            predicted = model(
                subject.train[val_clips].mean(1).to(device), subject.name, subject.train_motion[val_clips].to(device)
            ).cpu()
            target = subject.train_latents[val_clips]
            l1.append(torch.nn.functional.l1_loss(predicted, target).item())
            corr.append(_row_correlation(predicted - model.latent_mean.cpu(), target - model.latent_mean.cpu()))
        return {"l1": float(np.mean(l1)), "latent_corr": float(np.mean(corr))}

    identity = _identity(subjects, {k: settings[k] for k in ("loss", "motion")} | {"val": sorted(val_ids)})
    select = "latent_corr" if settings["select_best"] and len(val_clips) else None
    return train(
        model,
        loss_fn,
        presentation_batches([s.train.shape[1] for s in subjects], train_clips, config.batch_size),
        config,
        state_dir,
        validate,
        name,
        identity=identity,
        code=(mad_model, sad_model, losses),
        save=save,
        select=select,
        **kwargs,
    )


@torch.no_grad()
def calibrate_output_scale(model: MAD, subject: MADSubject, val_ids: list[str]) -> list[float]:
    """Set the model's output_scale, per latent channel, to the least-squares factor (clipped to [0, 1]) that maps
    its predicted deviations from the mean onto the true ones on the held-out clips (presentations averaged, as at
    test time; the motion tokens are the training ones, the truth by default where test time has SAD's decodes, so
    the factor is on the optimistic side) -> the factors. Without held-out clips the scale stays 1."""
    held_out = set(val_ids)
    rows = [i for i, c in enumerate(subject.train_ids) if c in held_out]
    model.output_scale.fill_(1.0)
    if not rows:
        return model.output_scale.flatten().tolist()
    model.eval()
    device = model.latent_mean.device
    predicted = model(subject.train[rows].mean(1).to(device), subject.name, subject.train_motion[rows].to(device))
    deviation_p = predicted - model.latent_mean  # [n, T, C, h, w]
    deviation_t = subject.train_latents[rows].to(device) - model.latent_mean
    dims = (0, 1, 3, 4)
    scale = ((deviation_p * deviation_t).sum(dims) / deviation_p.pow(2).sum(dims).clamp_min(1e-12)).clamp(0, 1)
    model.output_scale.copy_(scale.view_as(model.output_scale))
    return scale.tolist()


def _row_correlation(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.flatten(1) - a.flatten(1).mean(1, keepdim=True), b.flatten(1) - b.flatten(1).mean(1, keepdim=True)
    return float((torch.nn.functional.cosine_similarity(a, b, dim=1)).mean())


def save_mad(model: MAD, path, extra: dict) -> None:
    """Weights in safetensors, the model config (and `extra`) in a JSON file beside them."""
    model_store.save_model(model, path, "mad", extra)


def load_mad(path) -> tuple[MAD, dict]:
    return model_store.load_model(path, "mad", lambda config: MAD(MADConfig(**config)))


def _motion_paths(fmri_paths, truth_path, decoded_paths, source: str) -> list:
    if source not in MOTION_SOURCES:
        raise ValueError(f"mad.motion.source must be one of {MOTION_SOURCES}, got {source!r}")
    if source != "sad_decoded":
        return [truth_path] * len(fmri_paths)
    if len(decoded_paths or []) != len(fmri_paths):
        raise ValueError("mad.motion.source sad_decoded needs SAD's training-clip decodes of every subject")
    return list(decoded_paths)


def train_mad(fmri_paths, latents_path, motion_path, settings: dict, out_path, state_dir, decoded_paths=None, **kw):
    """Multi-subject MAD pretraining. `motion_path`: the motion captions' embeddings (embed_text; its `empty`
    constant is the null condition); `decoded_paths`: per subject, SAD's training-clip decodes (source
    sad_decoded). `settings`: the config's mad.model, mad.loss, mad.motion, mad.pretrain, mad.val_fraction,
    mad.val_block, mad.select_best, mad.init and ridge.alphas as ridge_alphas. Held out: whole runs of val_block
    consecutive clips (val_block 1: clips one by one, the original split)."""
    paths = _motion_paths(fmri_paths, motion_path, decoded_paths, settings["motion"]["source"])
    subjects = [load_mad_subject(f, latents_path, m) for f, m in zip(fmri_paths, paths)]
    empty = load_constant(motion_path, "empty")
    phase = TrainConfig(**settings["pretrain"])
    first = subjects[0]
    if settings["val_block"] > 1:
        split = block_validation_split(first.train_ids, settings["val_fraction"], phase.seed, settings["val_block"])
    else:
        split = validation_split(len(first.train_ids), settings["val_fraction"], phase.seed)
    train_rows, val_rows = split
    val_ids = [first.train_ids[i] for i in val_rows]
    frames, channels, height, width = first.train_latents.shape[1:]
    config = MADConfig(
        voxels={s.name: s.train.shape[-1] for s in subjects},
        frames=frames,
        channels=channels,
        height=height,
        width=width,
        text_tokens=first.train_motion.shape[1],
        text_dim=first.train_motion.shape[2],
        **settings["model"],
    )
    torch.manual_seed(phase.seed)
    model = MAD(config)
    model.latent_mean.copy_(first.train_latents[train_rows].mean(0))
    log.info("MAD %s: %.2f M parameters", config.to_dict(), sum(p.numel() for p in model.parameters()) / 1e6)
    if settings["init"] == "ridge":
        if not config.linear_readout:
            raise ValueError("mad.init ridge starts the linear readout: it needs mad.model.linear_readout true")
        voxels = {s.name: s.train[train_rows].mean(1).numpy() for s in subjects}
        start = init_shared_space(model, voxels, first.train_latents[train_rows], settings["ridge_alphas"])
        log.info("MAD shared space from the training latents' principal components and ridge: %s", start)

    def save(model, log_csv):
        extra = {"phase": "pretrain", "val_clips": val_ids, "settings": settings, "log": str(log_csv)}
        save_mad(model, out_path, {**extra, "latents": str(latents_path)})

    _fit(model, subjects, val_ids, empty, settings, settings["pretrain"], state_dir, "MAD pretrain", save, **kw)
    return model


def finetune_mad(
    pretrained_path, fmri_path, latents_path, motion_path, settings, out_path, state_dir, decoded_path=None, **kw
):
    """Per-subject fine-tuning of the pretrained MAD, holding out pretraining's clips; then, if mad.calibrate, the
    output scale fitted on them. `settings`: the config's mad.loss, mad.motion, mad.finetune, mad.select_best and
    mad.calibrate."""
    (path,) = _motion_paths(
        [fmri_path], motion_path, [decoded_path] if decoded_path else None, settings["motion"]["source"]
    )
    subject = load_mad_subject(fmri_path, latents_path, path)
    model, pretrained = load_mad(pretrained_path)
    if subject.name not in model.config.voxels:
        raise ValueError(f"{pretrained_path}: pretrained without subject {subject.name}")
    _check_latents(model, subject.train_latents, latents_path)
    val_ids, name = pretrained["val_clips"], f"MAD finetune {subject.name}"

    def save(model, log_csv):
        scale = calibrate_output_scale(model, subject, val_ids) if settings["calibrate"] else None
        if scale is not None:
            log.info(
                "%s: output scale per latent channel %s (fitted on %d held-out clips)",
                name,
                [round(x, 3) for x in scale],
                len(val_ids),
            )
        extra = {"phase": "finetune", "subject": subject.name, "val_clips": val_ids, "settings": settings}
        save_mad(model, out_path, {**extra, "output_scale": scale, "log": str(log_csv)})

    empty = load_constant(motion_path, "empty")
    _fit(model, [subject], val_ids, empty, settings, settings["finetune"], state_dir, name, save, **kw)
    return model


# -- decode_mad --------------------------------------------------------------------------------------------------


def predict_latents(variant: str, fmri_path, inputs: dict, settings: dict) -> tuple[torch.Tensor, list[str], dict]:
    """Test-clip latents [N, T, C, h, w] of one subject and variant, their clip ids and a record of how.
    inputs: full - model, sad_motion; no_motion - model, motion (for its `empty`); ridge - train_latents;
    oracle - test_latents (every test clip; it reads no fMRI, `fmri_path` None)."""
    if variant == "oracle":
        latents, ids = read_clip_array(inputs["test_latents"], "latents")
        return torch.from_numpy(latents.astype(np.float32)), ids, {}
    fmri = read_fmri(fmri_path)
    test = torch.from_numpy(fmri.test)
    if variant == "ridge":
        latents, _ = read_clip_array(inputs["train_latents"], "latents", fmri.train_ids)
        targets = latents.reshape(len(latents), -1).astype(np.float32)
        fitted, scaling = fit_ridge(fmri.train.mean(1), targets, settings["ridge_alphas"])
        predicted = predict_ridge(fitted, scaling, fmri.test).reshape(len(fmri.test), *latents.shape[1:])
        return torch.from_numpy(predicted).float(), fmri.test_ids, {"alpha": float(fitted.alpha_)}
    if variant not in ("full", "no_motion"):
        raise ValueError(f"unknown MAD variant {variant!r}; expected one of {VARIANTS}")
    model, _ = load_mad(inputs["model"])
    subject = Path(fmri_path).stem
    if variant == "full":
        motion = _embeddings_for(inputs["sad_motion"], fmri.test_ids)
    else:
        motion = load_constant(inputs["motion"], "empty").expand(len(test), -1, -1)
    expected = (model.config.text_tokens, model.config.text_dim)
    if tuple(motion.shape[1:]) != expected:
        source = inputs.get("sad_motion") or inputs["motion"]
        raise ValueError(f"{source}: motion tokens {tuple(motion.shape[1:])}, but the MAD model expects {expected}")
    device, batch = torch.device(settings["device"]), settings["batch_size"]
    model.to(device)
    with torch.no_grad():
        predicted = (
            torch.cat(
                [
                    model(test[i : i + batch].to(device), subject, motion[i : i + batch].to(device)).cpu()
                    for i in range(0, len(test), batch)
                ]
            )
            if len(test)
            else torch.zeros(0, *model.latent_mean.shape)
        )
    return predicted, fmri.test_ids, {"model": str(inputs["model"])}


def decode_mad(variant: str, fmri_path, vae_path, inputs: dict, settings: dict, latents_out, frames_out) -> None:
    """One subject and variant: predicted test latents (`latents_out`, float16) and their VAE decodes, the motion
    frames uint8 [N, T, H, W, 3] (`frames_out`). `settings`: device, batch_size, dtype (mad.decode) and
    ridge_alphas."""
    latents, ids, record = predict_latents(variant, fmri_path, inputs, settings)
    vae = load_vae(vae_path, settings["device"], settings["dtype"])
    if latents.shape[2] != vae.config.latent_channels:
        raise ValueError(
            f"{vae_path}: a VAE with {vae.config.latent_channels} latent channels cannot decode {variant} latents "
            f"with {latents.shape[2]}"
        )
    n, frames_per_clip = latents.shape[:2]
    frames = []
    clips_per_batch = max(1, settings["batch_size"] // frames_per_clip)
    for start in tqdm(range(0, n, clips_per_batch), desc=f"decode {variant}", unit="batch", file=sys.stderr):
        chunk = latents[start : start + clips_per_batch]
        decoded = decode_latents(vae, chunk.flatten(0, 1))
        frames.append(decoded.reshape(len(chunk), frames_per_clip, *decoded.shape[1:]))
    frames = np.concatenate(frames) if frames else np.zeros((0, frames_per_clip, 1, 1, 3), np.uint8)
    attrs = {"variant": variant, "vae": str(vae_path), **record}
    write_clip_array(latents_out, "latents", latents.half().numpy(), ids, attrs)
    write_clip_array(frames_out, "frames", frames, ids, attrs)
    log.info("%s: %s, %d test clips -> motion frames %s", frames_out, variant, n, tuple(frames.shape[1:]))
