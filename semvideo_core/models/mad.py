"""MAD, the Motion Adaptation Decoder: fMRI -> the VAE latents of every frame of the clip, guided by the motion
semantics that SAD decodes.

    voxels [B, V_s] --SubjectProjection (one linear map per subject)--> [B, hidden]
                    --MotionEmbedder--> S [B, T, N, width]       (T frames x N = (h/p)(w/p) grid positions)
    depth x TriPathBlock, each on LayerNorm(S):
        e_spat  = self-attention over the N positions of each frame
        e_temp  = self-attention over the T frames at each position
        e_cross = cross-attention from every token to the motion tokens Z(C_motion) [B, L, D]
        S <- S + lambda_spat * e_spat + lambda_temp * e_temp + e_cross;   S <- S + MLP(LayerNorm(S))
    head: LayerNorm + Linear(width -> C p p), unpatchified -> deviations [B, T, C, h, w]
    linear readout (linear_readout): the shared code itself, Linear(hidden -> T C h w), added to the deviations
    latents = latent_mean + output_scale[c] * deviations

The attention layers are diffusers' `Attention` (scaled-dot-product attention). The training mean latent is kept
in the model (`latent_mean`): a new head (near-zero weights) predicts about the mean clip, and the network learns
the deviations from it. `output_scale` (one factor per latent channel, 1 while training) shrinks the deviations
towards the mean after training, by as much as held-out clips ask (the least-squares factor, as ridge's penalty
shrinks its predictions): where the fMRI says little, the prediction should stay near the mean, not guess sharply.
The linear readout makes the shared space mean something: the stage can start it as the principal components of
the training latents, with each subject's projection the ridge regression onto their scores, so that MAD starts as
a (low-rank) ridge decoder and its attention blocks learn what a linear map cannot (`init_shared_space`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch
from diffusers.models.attention_processor import Attention
from torch import nn

from .ridge import fit_ridge
from .sad import SubjectProjection


@dataclass(frozen=True)
class MADConfig:
    voxels: dict[str, int]  # subject -> voxel count
    frames: int  # T
    channels: int  # C of the VAE latents
    height: int  # h of the latent grid
    width: int  # w
    text_tokens: int  # L of the motion embedding (77 for CLIP)
    text_dim: int  # D (768 for CLIP ViT-L/14)
    hidden: int = 256  # shared space after the subject projection
    patch: int = 8  # latent pixels per token side
    dim: int = 64  # token width
    depth: int = 2
    heads: int = 4
    dropout: float = 0.1
    lambda_spatial: float = 1.0
    lambda_temporal: float = 1.0
    linear_readout: bool = False  # a linear path from the shared code to the latents beside the attention blocks

    def __post_init__(self):
        if self.height % self.patch or self.width % self.patch:
            raise ValueError(f"patch {self.patch} must divide the latent grid {self.height} x {self.width}")
        if self.dim % self.heads:
            raise ValueError(f"heads {self.heads} must divide dim {self.dim}")

    @property
    def grid(self) -> tuple[int, int]:
        return self.height // self.patch, self.width // self.patch

    def to_dict(self) -> dict:
        return asdict(self)


class MotionEmbedder(nn.Module):
    """The shared fMRI code -> a sequence of T frame embeddings, each a token per grid position, with learned
    frame and position embeddings."""

    def __init__(self, config: MADConfig):
        super().__init__()
        rows, cols = config.grid
        self.shape = (config.frames, rows * cols, config.dim)
        self.norm = nn.LayerNorm(config.hidden)
        self.drop = nn.Dropout(config.dropout)
        self.proj = nn.Linear(config.hidden, config.frames * rows * cols * config.dim)
        self.frame_embedding = nn.Parameter(torch.zeros(config.frames, 1, config.dim))
        self.position_embedding = nn.Parameter(torch.zeros(1, rows * cols, config.dim))
        nn.init.normal_(self.frame_embedding, std=0.02)
        nn.init.normal_(self.position_embedding, std=0.02)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        tokens = self.proj(self.drop(nn.functional.gelu(self.norm(h))))  # [B, T N width]
        return tokens.view(-1, *self.shape) + self.frame_embedding + self.position_embedding  # [B, T, N, width]


class TriPathBlock(nn.Module):
    def __init__(self, config: MADConfig):
        super().__init__()
        dim, heads = config.dim, config.heads
        self.norm = nn.LayerNorm(dim)
        self.spatial = Attention(dim, heads=heads, dim_head=dim // heads, dropout=config.dropout)
        self.temporal = Attention(dim, heads=heads, dim_head=dim // heads, dropout=config.dropout)
        self.cross = Attention(
            dim, cross_attention_dim=config.text_dim, heads=heads, dim_head=dim // heads, dropout=config.dropout
        )
        self.mlp_norm = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(
            nn.Linear(dim, 4 * dim), nn.GELU(), nn.Dropout(config.dropout), nn.Linear(4 * dim, dim)
        )
        self.lambda_spatial, self.lambda_temporal = config.lambda_spatial, config.lambda_temporal

    def forward(self, x: torch.Tensor, motion: torch.Tensor) -> torch.Tensor:
        """x [B, T, N, width], motion [B, L, D] -> [B, T, N, width]."""
        batch, frames, positions, width = x.shape
        h = self.norm(x)
        spatial = self.spatial(h.reshape(batch * frames, positions, width)).view_as(x)
        temporal = self.temporal(h.transpose(1, 2).reshape(batch * positions, frames, width))
        temporal = temporal.view(batch, positions, frames, width).transpose(1, 2)
        cross = self.cross(h.reshape(batch, frames * positions, width), encoder_hidden_states=motion).view_as(x)
        x = x + self.lambda_spatial * spatial + self.lambda_temporal * temporal + cross
        return x + self.mlp(self.mlp_norm(x))


class MAD(nn.Module):
    def __init__(self, config: MADConfig):
        super().__init__()
        self.config = config
        self.projection = SubjectProjection(config.voxels, config.hidden)
        self.embedder = MotionEmbedder(config)
        self.blocks = nn.ModuleList([TriPathBlock(config) for _ in range(config.depth)])
        self.norm = nn.LayerNorm(config.dim)
        self.head = nn.Linear(config.dim, config.channels * config.patch**2)
        nn.init.normal_(self.head.weight, std=1e-3)  # start close to the mean clip
        nn.init.zeros_(self.head.bias)
        latent_shape = (config.frames, config.channels, config.height, config.width)
        self.register_buffer("latent_mean", torch.zeros(latent_shape))
        self.register_buffer("output_scale", torch.ones(config.channels, 1, 1))
        latent_size = config.frames * config.channels * config.height * config.width
        self.readout = nn.Linear(config.hidden, latent_size, bias=False) if config.linear_readout else None
        if self.readout is not None:
            nn.init.zeros_(self.readout.weight)  # the stage sets it (init_shared_space), or training grows it

    def forward(self, voxels: torch.Tensor, subject: str, motion: torch.Tensor) -> torch.Tensor:
        """voxels [B, V_s], motion tokens [B, L, D] -> latents [B, T, C, h, w]."""
        h = self.projection(voxels, subject)  # [B, hidden]
        x = self.embedder(h)  # [B, T, N, width]
        for block in self.blocks:
            x = block(x, motion)
        deviations = self.unpatchify(self.head(self.norm(x)))  # [B, T, C, h, w]
        if self.readout is not None:
            deviations = deviations + self.readout(h).view_as(deviations)
        return self.output_scale * deviations + self.latent_mean

    def unpatchify(self, patches: torch.Tensor) -> torch.Tensor:
        """[B, T, N, C p p] -> [B, T, C, h, w]."""
        c, p, (rows, cols) = self.config.channels, self.config.patch, self.config.grid
        batch, frames = patches.shape[:2]
        x = patches.view(batch, frames, rows, cols, c, p, p).permute(0, 1, 4, 2, 5, 3, 6)
        return x.reshape(batch, frames, c, rows * p, cols * p)


@torch.no_grad()
def init_shared_space(
    model: MAD, voxels: dict[str, np.ndarray], latents: torch.Tensor, alphas: list[float]
) -> dict[str, float]:
    """Start the shared space as the top `hidden` principal components of the training latents' deviations from
    `latent_mean`, in closed form: the linear readout maps their (globally rescaled) scores back to latents, and
    each subject's projection is the ridge regression (standardised voxels) from its voxels onto the scores, with
    the alpha that leave-one-out chooses for ridge onto the latents. Ridge is linear in its targets, so MAD then
    starts as the ridge baseline projected onto the components, the attention path near zero.

    voxels: subject -> presentation-averaged voxels [N, V_s] of the clips of `latents` [N, T, C, h, w].
    -> the fraction of latent variance the components hold, and each subject's alpha."""
    if model.readout is None:
        raise ValueError("init_shared_space needs a MAD with linear_readout")
    deviations = (latents - model.latent_mean).flatten(1).double()  # [N, P]
    _, singular, vh = torch.linalg.svd(deviations, full_matrices=False)
    k = min(model.config.hidden, len(singular))
    basis = vh[:k]  # [k, P]
    scores = deviations @ basis.T  # [N, k]
    unit = scores.pow(2).mean().sqrt().clamp_min(1e-12)  # one factor: shared codes of unit mean square
    readout = torch.zeros_like(model.readout.weight, dtype=torch.float64)  # [P, hidden]
    readout[:, :k] = basis.T * unit
    model.readout.weight.copy_(readout)
    record = {"variance_explained": float(singular[:k].pow(2).sum() / singular.pow(2).sum().clamp_min(1e-12))}
    targets = (scores / unit).numpy()
    for subject, x in voxels.items():
        # alpha as the ridge baseline chooses it, on the latents: on standardised scores, leave-one-out would weigh
        # the noisy tail components like the top ones (and choose 10x more shrinkage on the demo)
        alpha = fit_ridge(x, deviations.numpy(), alphas)[0].alpha_
        fitted, scaling = fit_ridge(x, targets, [alpha])
        weight = fitted.coef_ * scaling["y_std"][:, None] / scaling["x_std"][None, :]  # [k, V]
        bias = scaling["y_mean"] - weight @ scaling["x_mean"]
        layer = model.projection.maps[subject]
        layer.weight.zero_()
        layer.bias.zero_()
        layer.weight[:k] = torch.from_numpy(weight).to(layer.weight)
        layer.bias[:k] = torch.from_numpy(bias).to(layer.bias)
        record[f"alpha_{subject}"] = float(fitted.alpha_)
    return record
