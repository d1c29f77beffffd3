"""The video of CVR: AnimateDiff (an image UNet with a MotionAdapter) with a SparseCtrl RGB model carrying the
anchor frame at frame 0, prompt_embeds = the decoded holistic semantics, and the blurry-video initialisation.

diffusers' AnimateDiffSparseControlNetPipeline renders from pure noise and takes one clip per call;
AnimateDiffVideoToVideoPipeline starts from a video but has no SparseCtrl. `render_videos` is the one explicit
loop that combines them over the pipeline's own components: the motion frames, linearly interpolated to the render
length, are VAE-encoded and noised to `init_strength` of the schedule, and only the remaining DDIM steps run (as
img2img truncates its schedule). NeuroClips instead adds the noise at the first, highest timestep and runs every
step, which keeps little of the blurry video beyond its lowest frequencies; we truncate so that `init_strength`
means what it says. At `init_strength` 1 the loop starts from pure noise and gives the pipeline's frames exactly.
Clips are batched; each has its own generator, so its frames do not depend on its batch.
"""

from __future__ import annotations

import numpy as np
import torch
from diffusers import AnimateDiffSparseControlNetPipeline
from diffusers.utils.torch_utils import randn_tensor

from ..backends.generators import load_motion_adapter, load_scheduler, load_sparsectrl, load_unet
from ..backends.vae import load_vae
from ..pixels import to_uint8


def video_pipeline(t2i_path, adapter_path, sparsectrl_path, vae_path, device="cpu", dtype="float32"):
    """diffusers' AnimateDiff + SparseCtrl pipeline over our parts (its UNet becomes a UNetMotionModel); no
    tokenizer or text encoder: prompts come as embeddings."""
    pipe = AnimateDiffSparseControlNetPipeline(
        vae=load_vae(vae_path, device, dtype),
        text_encoder=None,
        tokenizer=None,
        unet=load_unet(t2i_path, device, dtype),
        motion_adapter=load_motion_adapter(adapter_path, device, dtype),
        controlnet=load_sparsectrl(sparsectrl_path, device, dtype),
        scheduler=load_scheduler(t2i_path),
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe


def interpolate_frames(frames: np.ndarray, length: int) -> np.ndarray:
    """uint8 [B, T, H, W, 3] -> [B, length, H, W, 3], linear in time from the first frame to the last (6 -> 16:
    every third frame is an original one)."""
    positions = np.linspace(0, frames.shape[1] - 1, length)
    lower = np.floor(positions).astype(int)
    upper = np.minimum(lower + 1, frames.shape[1] - 1)
    weight = (positions - lower)[None, :, None, None, None]
    blended = (1 - weight) * frames[:, lower].astype(np.float32) + weight * frames[:, upper].astype(np.float32)
    return np.clip(np.round(blended), 0, 255).astype(np.uint8)


def _encode(vae, frames: np.ndarray) -> torch.Tensor:
    """uint8 [n, H, W, 3] -> scaled posterior means [n, C, h, w] (pixels scaled as the pipeline scales them)."""
    pixels = (torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float() / 255 * 2 - 1).to(
        vae.device, vae.dtype
    )
    return vae.encode(pixels).latent_dist.mode() * vae.config.scaling_factor


@torch.no_grad()
def render_videos(
    pipe,
    motion_frames: np.ndarray,
    anchor_frames: np.ndarray,
    prompt_embeds: torch.Tensor,
    empty: torch.Tensor,
    settings: dict,
    seeds: list[int],
) -> np.ndarray:
    """Videos uint8 [B, frames, H, W, 3] from motion frames uint8 [B, T, H, W, 3], anchor frames uint8
    [B, H, W, 3] and holistic embeddings [B, L, D]. `settings`: frames, steps, guidance, init_strength,
    conditioning_scale."""
    vae, unet, controlnet, scheduler = pipe.vae, pipe.unet, pipe.controlnet, pipe.scheduler
    device, dtype = unet.device, unet.dtype
    batch, length, guidance = len(motion_frames), settings["frames"], settings["guidance"]
    shape = (batch, unet.config.in_channels, length, *(s // pipe.vae_scale_factor for s in motion_frames.shape[2:4]))

    # Text: [uncond; cond], one copy per frame, as the UNetMotionModel expects.
    text = torch.cat([empty.expand(batch, -1, -1), prompt_embeds]).to(device, dtype) if guidance > 1 else prompt_embeds
    text = text.to(device, dtype).repeat_interleave(length, dim=0)  # [(2)B * F, L, D]

    # SparseCtrl: the anchor frame's latents at frame 0, a mask marking it.
    condition = torch.zeros(shape, device=device, dtype=dtype)
    mask = torch.zeros((batch, 1, *shape[2:]), device=device, dtype=dtype)
    condition[:, :, 0] = _encode(vae, anchor_frames)
    mask[:, :, 0] = 1

    scheduler.set_timesteps(settings["steps"], device=device)
    timesteps = scheduler.timesteps
    generators = [torch.Generator(device).manual_seed(seed) for seed in seeds]
    noise = randn_tensor(shape, generator=generators, device=device, dtype=dtype)
    strength = settings["init_strength"]
    if strength >= 1:
        latents = noise * scheduler.init_noise_sigma
    else:
        kept = int(settings["steps"] * strength)  # img2img's rule
        if kept < 1:
            raise ValueError(f"init_strength {strength} x steps {settings['steps']} leaves no denoising step")
        timesteps = timesteps[settings["steps"] - kept :]
        blurry = interpolate_frames(motion_frames, length)  # [B, F, H, W, 3]
        init = _encode(vae, blurry.reshape(-1, *blurry.shape[2:]))  # [B * F, C, h, w]
        init = init.view(batch, length, *init.shape[1:]).permute(0, 2, 1, 3, 4)  # [B, C, F, h, w]
        latents = scheduler.add_noise(init, noise, timesteps[:1].repeat(batch))
    if guidance > 1:
        condition, mask = torch.cat([condition] * 2), torch.cat([mask] * 2)
    extra = pipe.prepare_extra_step_kwargs(generators, 0.0)

    for t in timesteps:
        model_input = torch.cat([latents] * 2) if guidance > 1 else latents
        model_input = scheduler.scale_model_input(model_input, t)
        down, mid = controlnet(
            model_input,
            t,
            encoder_hidden_states=text,
            controlnet_cond=condition,
            conditioning_mask=mask,
            conditioning_scale=settings["conditioning_scale"],
            return_dict=False,
        )
        predicted = unet(
            model_input,
            t,
            encoder_hidden_states=text,
            down_block_additional_residuals=down,
            mid_block_additional_residual=mid,
        ).sample
        if guidance > 1:
            uncond, cond = predicted.chunk(2)
            predicted = uncond + guidance * (cond - uncond)
        latents = scheduler.step(predicted, t, latents, **extra).prev_sample

    video = pipe.video_processor.postprocess_video(video=pipe.decode_latents(latents), output_type="pt")
    # [B, F, 3, H, W] in [0, 1]
    return np.stack([to_uint8(clip.float() * 2 - 1) for clip in video])
