"""The anchor frame of CVR: diffusers' StableDiffusionImg2ImgPipeline from the first motion frame, with
prompt_embeds = the decoded anchor semantics and negative_prompt_embeds = the empty caption's embedding."""

from __future__ import annotations

import numpy as np
import torch
from diffusers import StableDiffusionImg2ImgPipeline

from ..backends.generators import load_scheduler, load_unet
from ..backends.vae import load_vae
from ..pixels import to_uint8


def anchor_pipeline(t2i_path, vae_path, device: str = "cpu", dtype: str = "float32") -> StableDiffusionImg2ImgPipeline:
    """diffusers' img2img pipeline over our parts; no tokenizer or text encoder (prompts come as embeddings)."""
    pipe = StableDiffusionImg2ImgPipeline(
        vae=load_vae(vae_path, device, dtype),
        text_encoder=None,
        tokenizer=None,
        unet=load_unet(t2i_path, device, dtype),
        scheduler=load_scheduler(t2i_path),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe


def render_anchor_frames(
    pipe, init_frames: np.ndarray, prompt_embeds: torch.Tensor, empty: torch.Tensor, settings: dict, seeds: list[int]
) -> np.ndarray:
    """Anchor frames uint8 [N, H, W, 3] from first motion frames uint8 [N, H, W, 3] and anchor embeddings
    [N, L, D]; one generator per clip seeded with `seeds`, so a clip's frame does not depend on its batch."""
    device, dtype = pipe.unet.device, pipe.unet.dtype
    out = pipe(
        image=torch.from_numpy(init_frames).permute(0, 3, 1, 2).float() / 255,
        prompt_embeds=prompt_embeds.to(device, dtype),
        negative_prompt_embeds=empty.expand(len(init_frames), -1, -1).to(device, dtype),
        strength=settings["strength"],
        num_inference_steps=settings["steps"],
        guidance_scale=settings["guidance"],
        generator=[torch.Generator(device).manual_seed(seed) for seed in seeds],
        output_type="pt",
    ).images  # [N, 3, H, W] in [0, 1]
    return to_uint8(out.float().cpu() * 2 - 1)
