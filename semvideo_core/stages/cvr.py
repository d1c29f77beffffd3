"""Stages of rules/cvr.smk: the demo's own generators (train_t2i, train_motion_adapter, train_sparsectrl) and
CVR's anchor frame (render_anchor) and video (render_video).

train_t2i trains a small UNet2DConditionModel as latent diffusion on the demo VAE's latents of the training
clips' frames (`t2i.frames`: all, or the first only), conditioned on the token embeddings of their anchor captions
(the text encoder's own space, where SAD decodes to), with condition dropout to the empty caption so that
classifier-free guidance works.
render_anchor turns each test clip's first motion frame into a sharp anchor frame with diffusers'
StableDiffusionImg2ImgPipeline: prompt_embeds = the decoded anchor semantics, negative_prompt_embeds = the empty
caption's embedding.
render_video renders each test clip's video with AnimateDiff + SparseCtrl from its motion frames and anchor frame
(semvideo_core.render.video) and keeps the evaluation frames; rule preview_video encodes what a person watches.
"""

from __future__ import annotations

import hashlib
import json
import logging
import sys
from pathlib import Path

import diffusers
import numpy as np
import torch
from diffusers import DDPMScheduler, UNetMotionModel
from tqdm import tqdm

from .. import pixels
from ..backends import generators as generator_backend
from ..backends import vae as vae_backend
from ..backends.generators import (
    build_tiny_motion_adapter,
    build_tiny_sparsectrl,
    build_tiny_unet,
    load_motion_adapter,
    load_scheduler,
    load_unet,
    training_scheduler,
)
from ..config import without_checkpointing
from ..io.atomic import atomic_directory
from ..io.clip_arrays import read_clip_array, write_clip_array
from ..io.embeddings import load_constant, load_embeddings
from ..io.render_cache import RenderCache, fingerprint
from ..render import anchor as anchor_render
from ..render import video as video_render
from ..render.anchor import anchor_pipeline, render_anchor_frames
from ..render.video import render_videos, video_pipeline
from ..training import TrainConfig, code_version, train, validation_split, weights_hash

log = logging.getLogger(__name__)
# The held-out denoising loss noises each held-out sample to one of these in turn: every timestep is scored, at a
# fifth of the cost of noising every sample to all of them (which took 20-45 % of the demo generators' jobs).
VALIDATION_TIMESTEPS = (100, 300, 500, 700, 900)


def _caption_tokens(path, clip_ids: list[str]) -> torch.Tensor:
    embeds, ids = load_embeddings(path)
    index = {clip: i for i, clip in enumerate(ids)}
    missing = [clip for clip in clip_ids if clip not in index]
    if missing:
        raise ValueError(f"{path}: {len(missing)} clips are missing from embeds (first: {missing[0]})")
    return embeds[[index[clip] for clip in clip_ids]]


def denoising_loss(
    unet, scheduler, latents, tokens, noise, timesteps, min_snr_gamma: float, **unet_kwargs
) -> torch.Tensor:
    """Mean squared error of the UNet's prediction (epsilon or v, as the scheduler says) on `latents` noised to
    `timesteps`, each sample weighted by min(SNR, gamma) / SNR (epsilon) or / (SNR + 1) (v): min-SNR weighting.
    Images [B, C, h, w] with tokens [B, L, D], or videos [B, C, F, h, w] with tokens [B * F, L, D];
    `unet_kwargs` go to the UNet (a ControlNet's residuals)."""
    noisy = scheduler.add_noise(latents, noise, timesteps)
    if scheduler.config.prediction_type == "v_prediction":
        target = scheduler.get_velocity(latents, noise, timesteps)
    else:
        target = noise
    predicted = unet(noisy, timesteps, encoder_hidden_states=tokens, **unet_kwargs).sample
    alphas = scheduler.alphas_cumprod.to(latents.device)[timesteps]
    snr = alphas / (1 - alphas)
    weight = snr.clamp(max=min_snr_gamma) / (snr + 1 if scheduler.config.prediction_type == "v_prediction" else snr)
    return (weight * (predicted - target).pow(2).flatten(1).mean(1)).mean()


def _train_denoiser(
    model,
    samples,
    tokens,
    empty,
    ids,
    scheduler,
    settings,
    out_dir,
    state_dir,
    name,
    loss,
    save_to,
    identity="",
    samples_per_clip: int = 1,
    **kwargs,
) -> dict:
    """The loop the demo generators share: `samples` (frame latents [N * samples_per_clip, C, h, w], each clip's
    consecutive, or clips [N, C, T, h, w]) of the clips `ids`, noised on `scheduler`,
    `loss(model, scheduler, x, tokens, noise, t, gamma)` (tokens one per sample, copied per frame), caption dropout
    to `empty`, a denoising loss per epoch on held-out clips (all their samples); `save_to(model, folder)` writes the
    model into `out_dir` beside training.json. -> the held-out loss."""
    phase = TrainConfig(**settings["train"])
    train_clips, val_clips = validation_split(len(ids), settings["val_fraction"], phase.seed)
    train_rows, val_rows = (
        (clips[:, None] * samples_per_clip + np.arange(samples_per_clip)).ravel() for clips in (train_clips, val_clips)
    )
    gamma, drop = settings["min_snr_gamma"], settings["condition_drop"]
    frames = samples.shape[2] if samples.ndim == 5 else 1
    log.info(
        "%s: %.2f M trainable parameters, %d training samples %s, tokens %s",
        name,
        sum(p.numel() for p in model.parameters() if p.requires_grad) / 1e6,
        len(train_rows),
        tuple(samples.shape[1:]),
        tuple(tokens.shape[1:]),
    )

    def plan(epoch, rng):
        order = rng.permutation(train_rows)
        return [(b, int(rng.integers(2**31))) for b in np.array_split(order, max(1, len(order) // phase.batch_size))]

    def loss_fn(model, batch):
        rows, seed = batch
        generator = torch.Generator().manual_seed(seed)
        cond = tokens[rows].clone()
        cond[torch.rand(len(rows), generator=generator) < drop] = empty[0]
        x = samples[rows]
        noise = torch.randn(x.shape, generator=generator)
        t = torch.randint(0, scheduler.config.num_train_timesteps, (len(rows),), generator=generator)
        cond = cond.repeat_interleave(frames, 0)
        device = phase.device
        return loss(model, scheduler, x.to(device), cond.to(device), noise.to(device), t.to(device), gamma), {}

    last_validation = {}  # the latest weights' held-out loss: the final weights' when training has just ended

    @torch.no_grad()
    def validate(model):
        if not len(val_rows):
            return {}
        generator = torch.Generator().manual_seed(0)
        x = samples[val_rows]
        cond = tokens[val_rows].repeat_interleave(frames, 0)
        noise = torch.randn(x.shape, generator=generator)
        t = torch.tensor(VALIDATION_TIMESTEPS)[torch.arange(len(x)) % len(VALIDATION_TIMESTEPS)]
        device = phase.device
        score = loss(model, scheduler, x.to(device), cond.to(device), noise.to(device), t.to(device), gamma).item()
        last_validation.clear()
        last_validation["denoising"] = score
        return dict(last_validation)

    scores = {}

    def save(model, log_csv):
        # train() validated these very weights after the last epoch; a job resumed past it validates them anew
        scores.update(last_validation or validate(model))
        with atomic_directory(out_dir) as partial:
            save_to(model, Path(partial))
            record = {"held_out": scores, "val_clips": [ids[i] for i in val_clips], "settings": settings}
            (Path(partial) / "training.json").write_text(json.dumps({**record, "log": str(log_csv)}, indent=2))
        log.info("%s: held-out denoising loss %s -> %s", name, scores, out_dir)

    settings_text = json.dumps(without_checkpointing(settings), sort_keys=True)  # how often it saves is not the job
    fingerprint = hashlib.sha256(samples.numpy().tobytes() + tokens.numpy().tobytes() + settings_text.encode())
    fingerprint.update(identity.encode())
    train(
        model,
        loss_fn,
        plan,
        phase,
        state_dir,
        validate,
        name,
        identity=fingerprint.hexdigest()[:16],
        save=save,
        **kwargs,
    )
    return scores


def _denoise(model, scheduler, x, tokens, noise, t, gamma):
    return denoising_loss(model, scheduler, x, tokens, noise, t, gamma)


def train_t2i(latents_path, anchor_path, settings: dict, out_dir, state_dir, **kwargs) -> dict:
    """The demo's text-to-image UNet, saved with save_pretrained as `out_dir/unet` and `out_dir/scheduler` (the
    layout of an SD pipeline folder), trained on the first frame of each training clip or on all its frames
    (`settings["frames"]`), each with the clip's anchor caption: the caption names the background and the objects,
    which stay through the clip's frames, and the frames show them in more places.
    `settings`: the config's t2i section. -> held-out denoising loss."""
    latents, ids = read_clip_array(latents_path, "latents")  # [N, T, C, h, w]
    per_clip = latents.shape[1] if settings["frames"] == "all" else 1
    frames = torch.from_numpy(latents[:, :per_clip].astype(np.float32)).flatten(0, 1)  # [N * per_clip, C, h, w]
    tokens = _caption_tokens(anchor_path, ids).repeat_interleave(per_clip, 0)  # [N * per_clip, L, D]
    scheduler = training_scheduler(settings)
    torch.manual_seed(settings["train"].get("seed", 0))
    unet = build_tiny_unet(settings["model"], frames.shape[1], frames.shape[-1], tokens.shape[-1])

    def save_to(unet, folder):
        unet.save_pretrained(folder / "unet", safe_serialization=True)
        scheduler.save_pretrained(folder / "scheduler")

    empty = load_constant(anchor_path, "empty")
    return _train_denoiser(
        unet,
        frames,
        tokens,
        empty,
        ids,
        scheduler,
        settings,
        out_dir,
        state_dir,
        "demo t2i",
        _denoise,
        save_to,
        samples_per_clip=per_clip,
        **kwargs,
    )


# -- train_motion_adapter, train_sparsectrl ----------------------------------------------------------------------


def _clip_latents(latents_path, tokens_path) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, list[str]]:
    """(training clips' latents [N, C, T, h, w], their caption tokens [N, L, D], the empty caption [1, L, D],
    clip ids)."""
    latents, ids = read_clip_array(latents_path, "latents")
    videos = torch.from_numpy(latents.astype(np.float32)).permute(0, 2, 1, 3, 4)
    return videos, _caption_tokens(tokens_path, ids), load_constant(tokens_path, "empty"), ids


def _image_schedule(t2i_path) -> DDPMScheduler:
    """The image UNet's own noise schedule, for training its video parts."""
    return DDPMScheduler.from_config(load_scheduler(t2i_path).config)


def train_motion_adapter(latents_path, holistic_path, t2i_path, settings: dict, out_dir, state_dir, **kwargs) -> dict:
    """The demo's MotionAdapter: AnimateDiff's motion modules inserted into the demo t2i UNet (frozen, as
    AnimateDiff trains), trained to denoise the training clips' latents given their holistic-caption tokens.
    Saved with save_pretrained (save_motion_modules) in `out_dir`. `settings`: the motion_adapter section.
    -> held-out denoising loss."""
    unet = load_unet(t2i_path)
    torch.manual_seed(settings["train"].get("seed", 0))
    motion_unet = UNetMotionModel.from_unet2d(unet, build_tiny_motion_adapter(unet, settings["model"]))
    motion_unet.freeze_unet2d_params()
    videos, tokens, empty, ids = _clip_latents(latents_path, holistic_path)

    def save_to(model, folder):
        model.save_motion_modules(folder, safe_serialization=True)

    name = "demo motion adapter"
    return _train_denoiser(
        motion_unet,
        videos,
        tokens,
        empty,
        ids,
        _image_schedule(t2i_path),
        settings,
        out_dir,
        state_dir,
        name,
        _denoise,
        save_to,
        **kwargs,
    )


def train_sparsectrl(
    latents_path, holistic_path, t2i_path, adapter_path, settings: dict, out_dir, state_dir, **kwargs
) -> dict:
    """The demo's SparseCtrl RGB model: a SparseControlNetModel copied from the t2i UNet's encoder, trained with the
    motion UNet (t2i + MotionAdapter) frozen to denoise the training clips given their first frame's latents at
    frame 0 (and the holistic-caption tokens). Saved with save_pretrained in `out_dir`. -> held-out loss."""
    unet, adapter = load_unet(t2i_path), load_motion_adapter(adapter_path)
    motion_unet = UNetMotionModel.from_unet2d(unet, adapter).eval().requires_grad_(False)
    torch.manual_seed(settings["train"].get("seed", 0))
    controlnet = build_tiny_sparsectrl(unet, adapter)
    videos, tokens, empty, ids = _clip_latents(latents_path, holistic_path)

    def loss(model, scheduler, x, tokens, noise, t, gamma):
        condition, mask = torch.zeros_like(x), torch.zeros_like(x[:, :1])
        condition[:, :, 0], mask[:, :, 0] = x[:, :, 0], 1  # the clean first frame, as render_videos gives it
        noisy = scheduler.add_noise(x, noise, t)
        down, mid = model(
            noisy, t, encoder_hidden_states=tokens, controlnet_cond=condition, conditioning_mask=mask, return_dict=False
        )
        residuals = {"down_block_additional_residuals": down, "mid_block_additional_residual": mid}
        return denoising_loss(motion_unet.to(x.device), scheduler, x, tokens, noise, t, gamma, **residuals)

    def save_to(model, folder):
        model.save_pretrained(folder, safe_serialization=True)

    return _train_denoiser(
        controlnet,
        videos,
        tokens,
        empty,
        ids,
        _image_schedule(t2i_path),
        settings,
        out_dir,
        state_dir,
        "demo SparseCtrl",
        loss,
        save_to,
        identity=weights_hash(motion_unet),
        **kwargs,
    )


# -- render_anchor -----------------------------------------------------------------------------------------------


def _tokens_for(source: str, inputs: dict, ids: list[str], key: str) -> torch.Tensor:
    """A level's tokens per clip: decoded (`inputs[key]`), the truth (`inputs[key + "_truth"]`) or the empty
    caption (the constant of the truth file)."""
    if source == "empty":
        return load_constant(inputs[f"{key}_truth"], "empty").expand(len(ids), -1, -1)
    return _caption_tokens(inputs[key] if source == "decoded" else inputs[f"{key}_truth"], ids)


def _check_token_width(unet, unet_path, prompts: torch.Tensor, tokens_path, level: str) -> None:
    if unet.config.cross_attention_dim != prompts.shape[-1]:
        raise ValueError(
            f"{unet_path}: the UNet attends to {unet.config.cross_attention_dim}-d tokens, the {level} embeddings "
            f"are {prompts.shape[-1]}-d ({tokens_path})"
        )


def _render_identity(settings: dict, ids: list[str]) -> dict:
    """`settings` with what else decides a job's frames besides its arrays and model folders: the clip ids (clip row
    r draws seed + r) and the code and libraries that render, so that a killed job's clips are not resumed after an
    edit of the render code or an upgrade of torch or diffusers."""
    modules = [sys.modules[__name__], anchor_render, video_render, generator_backend, vae_backend, pixels]
    return {
        "settings": settings,
        "clip_ids": ids,
        "code": code_version(modules),
        "libraries": {"torch": torch.__version__, "diffusers": diffusers.__version__},
    }


def _unrendered(cache: RenderCache, ids: list[str], out_path) -> list[int]:
    """The rows of `ids` still to render; says how many a killed job had rendered."""
    unrendered = cache.unrendered(ids)
    if len(unrendered) < len(ids):
        log.info(
            "%s: %d of %d clips already rendered (cache %s)",
            out_path,
            len(ids) - len(unrendered),
            len(ids),
            cache.folder,
        )
    return unrendered


def _first_frames(path, clip_ids: list[str] | None = None) -> tuple[np.ndarray, list[str]]:
    frames, ids = read_clip_array(path, "frames", clip_ids)  # [N, T, H, W, 3]
    return frames[:, 0], ids


def render_anchor(inputs: dict, t2i_path, vae_path, settings: dict, out_path, cache_dir) -> np.ndarray:
    """One variant's anchor frames for one subject's test clips -> `out_path` (HDF5 `anchor` uint8 [N, H, W, 3]).
    `inputs`: motion_frames (decode_mad's frames; the first of each clip is the init image), anchor_truth (the
    dataset's anchor embeddings: the empty caption, the oracle's tokens) and, for decoded prompts, anchor (SAD's or
    ridge's decodes). `settings`: variant, source (decoded / truth / empty), the render.anchor knobs, clips (how
    many test clips; null: all), batch_size, device, dtype. Clips rendered before a kill are taken from `cache_dir`."""
    init, ids = _first_frames(inputs["motion_frames"])
    if settings.get("clips"):  # the ablations render the first clips only
        init, ids = init[: settings["clips"]], ids[: settings["clips"]]
    empty = load_constant(inputs["anchor_truth"], "empty")  # [1, L, D]
    variant = settings["variant"]
    prompts = _tokens_for(settings["source"], inputs, ids, "anchor")  # [N, L, D]
    anchor = settings["anchor"]
    key = fingerprint([init, prompts.numpy(), empty.numpy()], _render_identity(settings, ids), [t2i_path, vae_path])
    cache = RenderCache(cache_dir, key)
    unrendered = _unrendered(cache, ids, out_path)
    if unrendered:
        pipe = anchor_pipeline(t2i_path, vae_path, settings["device"], settings["dtype"])
        _check_token_width(pipe.unet, t2i_path, prompts, inputs.get("anchor", inputs["anchor_truth"]), "anchor")
        with tqdm(total=len(unrendered), desc=f"anchor {variant}", unit="clip", file=sys.stderr) as bar:
            for start in range(0, len(unrendered), settings["batch_size"]):
                rows = unrendered[start : start + settings["batch_size"]]
                frames = render_anchor_frames(
                    pipe, init[rows], prompts[rows], empty, anchor, [anchor["seed"] + row for row in rows]
                )
                for row, frame in zip(rows, frames):
                    cache.put(ids[row], frame)
                bar.update(len(rows))
    frames = np.stack([cache.get(clip) for clip in ids]) if ids else np.zeros((0, *init.shape[1:]), np.uint8)
    write_clip_array(out_path, "anchor", frames, ids, {"variant": variant, "settings": settings})
    cache.clear()
    log.info("%s: %d anchor frames %s", out_path, len(ids), tuple(frames.shape[1:]))
    return frames


# -- render_video ------------------------------------------------------------------------------------------------


def render_video(inputs: dict, parts: dict, settings: dict, out_path, cache_dir) -> np.ndarray:
    """One variant's videos for one subject's test clips. `inputs`: motion_frames (decode_mad), anchor (render_anchor),
    holistic_truth (the dataset's holistic embeddings: the empty caption, the oracle's tokens), holistic (decoded).
    `parts`: t2i, motion_adapter, sparsectrl, vae folders. `settings`: variant, holistic source (decoded / truth /
    empty), the render.video knobs, clips (how many test clips; null: all), batch_size, device, dtype. Writes the
    evaluation frames to `out_path` (HDF5 `frames` uint8 [N, F_eval, H, W, 3]; rule preview_video makes the mp4s).
    Clips rendered before a kill are taken from `cache_dir`."""
    motion, ids = read_clip_array(inputs["motion_frames"], "frames")
    if settings["clips"]:
        motion, ids = motion[: settings["clips"]], ids[: settings["clips"]]
    anchors = read_clip_array(inputs["anchor"], "anchor", ids)[0]
    empty = load_constant(inputs["holistic_truth"], "empty")
    prompts = _tokens_for(settings["holistic"], inputs, ids, "holistic")
    video = settings["video"]
    evaluation = slice(video["eval_start"], None, video["eval_step"])
    arrays = [motion, anchors, prompts.numpy(), empty.numpy()]
    key = fingerprint(arrays, _render_identity(settings, ids), list(parts.values()))
    cache = RenderCache(cache_dir, key)
    unrendered = _unrendered(cache, ids, out_path)
    if unrendered:
        pipe = video_pipeline(
            parts["t2i"],
            parts["motion_adapter"],
            parts["sparsectrl"],
            parts["vae"],
            settings["device"],
            settings["dtype"],
        )
        _check_token_width(
            pipe.unet, parts["t2i"], prompts, inputs.get("holistic", inputs["holistic_truth"]), "holistic"
        )
        with tqdm(total=len(unrendered), desc=f"video {settings['variant']}", unit="clip", file=sys.stderr) as bar:
            for start in range(0, len(unrendered), settings["batch_size"]):
                rows = unrendered[start : start + settings["batch_size"]]
                videos = render_videos(
                    pipe,
                    motion[rows],
                    anchors[rows],
                    prompts[rows],
                    empty,
                    video,
                    [video["seed"] + row for row in rows],
                )
                for row, frames in zip(rows, videos):
                    cache.put(ids[row], frames[evaluation])
                bar.update(len(rows))
    frames = np.stack([cache.get(clip) for clip in ids])  # [N, F_eval, H, W, 3]
    write_clip_array(out_path, "frames", frames, ids, {"variant": settings["variant"], "settings": settings})
    cache.clear()
    log.info("%s: %d videos of %d evaluation frames %s", out_path, len(ids), frames.shape[1], tuple(frames.shape[2:]))
    return frames
