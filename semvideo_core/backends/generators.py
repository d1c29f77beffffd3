"""The diffusion models of CVR, all diffusers classes read with `from_pretrained`:

- t2i: a `UNet2DConditionModel` (with its `scheduler/` config) that renders the anchor frame. Backends (config
  `models.t2i.backend`): `diffusers` loads an SD-1.5-family pipeline folder (`unet/`, `scheduler/`); `tiny` is the
  demo's own latent-diffusion UNet on the demo VAE's latents, trained by rule train_t2i and saved in the same
  layout, so it is loaded through the same path.
- motion_adapter: AnimateDiff's `MotionAdapter` (real runs: v3 `v3_sd15_mm` converted to diffusers; tiny: trained
  by rule train_motion_adapter on the demo's clips with the image UNet frozen).
- sparsectrl: a `SparseControlNetModel` carrying the anchor frame at frame 0 (real runs: SparseCtrl RGB; tiny:
  trained by rule train_sparsectrl).

Every backend's UNet is conditioned on the text encoder's token embeddings (`cross_attention_dim` = the encoder's
width): SAD's decodes live in that space.
"""

from __future__ import annotations

import json
from pathlib import Path

from diffusers import DDIMScheduler, DDPMScheduler, MotionAdapter, SparseControlNetModel, UNet2DConditionModel

from .precision import runtime_dtype

GENERATOR_BACKENDS = ("diffusers", "tiny")


def _subfolder(path: str | Path, name: str, what: str) -> Path:
    """`path/name` (a pipeline folder) or `path` itself, whichever holds config.json."""
    path = Path(path)
    for folder in (path / name, path):
        if (folder / "config.json").is_file() or (folder / "scheduler_config.json").is_file():
            return folder
    raise FileNotFoundError(f"{path}: no {what} here (config.json missing, also under {name}/)")


def build_tiny_unet(settings: dict, latent_channels: int, sample_size: int, cross_attention_dim: int):
    """An untrained small UNet2DConditionModel (random weights: only for train_t2i to train, and tests). Cross-
    attention only in the lower levels (`cross_attention_levels` of them), where it is cheap."""
    channels, head_dim = settings["block_out_channels"], settings["attention_head_dim"]
    levels = len(channels)
    plain = levels - settings["cross_attention_levels"]
    if any(c % head_dim for c in channels[plain:]):
        raise ValueError(
            f"t2i.model: attention_head_dim {head_dim} must divide the channels of every cross-attention level "
            f"({channels[plain:]})"
        )
    return UNet2DConditionModel(
        sample_size=sample_size,
        in_channels=latent_channels,
        out_channels=latent_channels,
        down_block_types=("DownBlock2D",) * plain + ("CrossAttnDownBlock2D",) * (levels - plain),
        up_block_types=("CrossAttnUpBlock2D",) * (levels - plain) + ("UpBlock2D",) * plain,
        block_out_channels=tuple(settings["block_out_channels"]),
        layers_per_block=settings["layers_per_block"],
        norm_num_groups=settings["norm_num_groups"],
        cross_attention_dim=cross_attention_dim,
        # UNet2DConditionModel reads `attention_head_dim` as heads per level (a naming diffusers keeps for SD-1.5's
        # configs): pass the heads that give each level `head_dim` channels a head (the plain levels use none).
        attention_head_dim=tuple(max(1, c // head_dim) for c in channels),
    )


def training_scheduler(settings: dict) -> DDPMScheduler:
    """The noise schedule a tiny UNet trains with (and samples with, as DDIM)."""
    return DDPMScheduler(
        num_train_timesteps=1000,
        beta_schedule=settings["beta_schedule"],
        prediction_type=settings["prediction_type"],
        clip_sample=False,
        steps_offset=1,  # as SD's schedulers: DDIM's last step lands on t = 1
    )


def load_unet(path: str | Path, device: str = "cpu", dtype: str = "float32") -> UNet2DConditionModel:
    """The UNet2DConditionModel of a pipeline folder (`path/unet`) or a bare UNet folder, eval mode on `device`;
    half precision only on GPU."""
    return _load(UNet2DConditionModel, path, "unet", device, dtype)


def load_scheduler(path: str | Path) -> DDIMScheduler:
    """A DDIM sampler with the noise schedule of a pipeline folder's `scheduler/`."""
    folder = _subfolder(path, "scheduler", "scheduler config")
    try:
        return DDIMScheduler.from_pretrained(folder)
    except (OSError, ValueError, TypeError, KeyError) as error:
        raise ValueError(f"{folder}: not a loadable scheduler config ({error})") from error


def build_tiny_motion_adapter(unet: UNet2DConditionModel, settings: dict) -> MotionAdapter:
    """An untrained MotionAdapter matching `unet`'s levels (random weights: for train_motion_adapter, and tests)."""
    return MotionAdapter(
        block_out_channels=tuple(unet.config.block_out_channels),
        motion_layers_per_block=settings["motion_layers_per_block"],
        motion_num_attention_heads=settings["motion_num_attention_heads"],
        motion_norm_num_groups=unet.config.norm_num_groups,
        motion_max_seq_length=settings["motion_max_seq_length"],
        use_motion_mid_block=True,
    )


def build_tiny_sparsectrl(unet: UNet2DConditionModel, adapter: MotionAdapter) -> SparseControlNetModel:
    """A SparseControlNetModel copied from `unet`'s encoder (as SparseCtrl is initialised), taking the VAE latents
    of the condition frames plus their mask (the RGB model's simplified condition embedding: one zero-initialised
    convolution); its motion modules shaped as `adapter`'s (heads, positions, transformer layers)."""
    original = unet.config.down_block_types
    # from_unet renames the block types in place, which a tuple (a config built in code) does not allow.
    unet.register_to_config(down_block_types=list(original))
    try:
        copied = SparseControlNetModel.from_unet(unet, conditioning_channels=unet.config.in_channels)
    finally:
        unet.register_to_config(down_block_types=original)
    # from_unet gives the motion modules diffusers' defaults (8 heads: 2 channels a head at the demo's 16); rebuild them
    # as the adapter's, keeping every weight from_unet made that still fits (all of them with the default settings).
    config = {key: value for key, value in copied.config.items() if not key.startswith("_")}  # `_` keys: defaults
    controlnet = SparseControlNetModel.from_config(
        config
        | {
            "motion_num_attention_heads": adapter.config.motion_num_attention_heads,
            "motion_max_seq_length": adapter.config.motion_max_seq_length,
            "temporal_transformer_layers_per_block": adapter.config.motion_transformer_layers_per_block,
        }
    )
    fitting = controlnet.state_dict()
    copied_weights = {k: v for k, v in copied.state_dict().items() if k in fitting and fitting[k].shape == v.shape}
    controlnet.load_state_dict(copied_weights, strict=False)
    return controlnet


def _load(cls, path: str | Path, subfolder: str, device: str, dtype: str):
    folder = _subfolder(path, subfolder, cls.__name__)
    found = json.loads((folder / "config.json").read_text()).get("_class_name")
    if found != cls.__name__:
        raise ValueError(f"{folder}/config.json: a {found}, not a {cls.__name__}")
    torch_dtype = runtime_dtype(device, dtype)
    try:
        model = cls.from_pretrained(folder, torch_dtype=torch_dtype)
    except (OSError, ValueError, TypeError, KeyError) as error:
        raise ValueError(f"{folder}: not a loadable {cls.__name__} ({error})") from error
    return model.to(device).eval()


def load_motion_adapter(path: str | Path, device: str = "cpu", dtype: str = "float32") -> MotionAdapter:
    """A MotionAdapter folder (AnimateDiff v3's `v3_sd15_mm` in diffusers format, or the demo's)."""
    return _load(MotionAdapter, path, "motion_adapter", device, dtype)


def load_sparsectrl(path: str | Path, device: str = "cpu", dtype: str = "float32") -> SparseControlNetModel:
    """A SparseControlNetModel folder (SparseCtrl RGB in diffusers format, or the demo's)."""
    return _load(SparseControlNetModel, path, "controlnet", device, dtype)
