"""The VAE that turns clip frames into MAD's latents and MAD's latents back into motion frames.

Backends (config `models.vae.backend`), both a diffusers `AutoencoderKL` read with `from_pretrained`:
- diffusers: a local folder with `config.json` and the weights; real runs point at the SD-1.5 `vae/` folder (a
  pipeline folder with a `vae/` inside is understood). Latents are scaled by the folder's `scaling_factor`.
- demo: a small AutoencoderKL that rule train_vae trains on the demo world's training frames and saves with
  `save_pretrained` (models/{dataset}/vae/); it is loaded through the same path as a downloaded one.

Frames are resized to the latent stage's square `size` (cv2 INTER_AREA when shrinking), scaled to [-1, 1], and
encoded to the posterior mean times the scaling factor: the latents MAD predicts. Decoding inverts both steps.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from diffusers import AutoencoderKL

from ..pixels import to_pixels, to_uint8
from .precision import runtime_dtype

VAE_BACKENDS = ("diffusers", "demo")


def vae_folder(path: str | Path) -> Path:
    """The folder holding the AutoencoderKL's config.json (`path` itself, or its `vae/`)."""
    path = Path(path)
    for folder in (path, path / "vae"):
        if (folder / "config.json").is_file():
            return folder
    raise FileNotFoundError(f"{path}: no AutoencoderKL here (config.json missing, also under vae/)")


def load_vae(path: str | Path, device: str = "cpu", dtype: str = "float32") -> AutoencoderKL:
    """The AutoencoderKL saved at `path` (either backend), in eval mode on `device`. Half precision is for GPUs; on
    CPU the VAE runs in float32."""
    folder = vae_folder(path)
    torch_dtype = runtime_dtype(device, dtype)
    try:
        vae = AutoencoderKL.from_pretrained(folder, torch_dtype=torch_dtype)
    except (OSError, ValueError, TypeError, KeyError) as error:
        raise ValueError(f"{folder}: not a loadable AutoencoderKL ({error})") from error
    return vae.to(device).eval()


def build_demo_vae(block_out_channels, layers_per_block: int, latent_channels: int, norm_num_groups: int, size: int):
    """An untrained small AutoencoderKL (random weights: only for train_vae to train, and tests of loading)."""
    return AutoencoderKL(
        down_block_types=("DownEncoderBlock2D",) * len(block_out_channels),
        up_block_types=("UpDecoderBlock2D",) * len(block_out_channels),
        block_out_channels=tuple(block_out_channels),
        layers_per_block=layers_per_block,
        latent_channels=latent_channels,
        norm_num_groups=norm_num_groups,
        sample_size=size,
        mid_block_add_attention=False,  # convolutional throughout: trained on crops, applied to whole frames
    )


def downsampling(vae: AutoencoderKL) -> int:
    return 2 ** (len(vae.config.block_out_channels) - 1)


@torch.inference_mode()
def encode_frames(vae: AutoencoderKL, frames: np.ndarray) -> torch.Tensor:
    """uint8 [n, H, W, 3] (at the VAE's size) -> scaled latents [n, C, h, w] float32 on CPU."""
    pixels = to_pixels(frames).to(vae.device, vae.dtype)
    return (vae.encode(pixels).latent_dist.mode() * vae.config.scaling_factor).float().cpu()


@torch.inference_mode()
def decode_latents(vae: AutoencoderKL, latents: torch.Tensor) -> np.ndarray:
    """scaled latents [n, C, h, w] -> uint8 [n, H, W, 3]."""
    latents = latents.to(vae.device, vae.dtype) / vae.config.scaling_factor
    return to_uint8(vae.decode(latents).sample)
