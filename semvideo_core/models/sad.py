"""SAD, the Semantic Alignment Decoder: fMRI -> the per-token text embedding of one caption level.

    voxels [B, V_s] --SubjectProjection (one linear map per subject)--> [B, hidden]
                    --ResidualMLP (4 residual blocks, shared by all subjects)--> [B, hidden]
                    --head--> Z_mlp [B, T, D]                      (L_MSE, L_SoftCLIP)
    Refineformer: causal transformer over [Z_mlp tokens; timestep; noisy target tokens] -> clean target [B, T, D]
                  trained as a diffusion denoiser (L_refine) under diffusers' DDPMScheduler with the cosine
                  schedule, sampled with diffusers' DDIMScheduler at inference.

Each caption level (anchor, motion, holistic) has its own SAD model: the levels share no weights, so each trains
as its own job. Targets are standardised per token and channel with training-set statistics kept in the model
(`target_mean`, `target_std`), so the diffusion runs on unit-scale tokens; outputs are mapped back.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from diffusers import DDIMScheduler, DDPMScheduler
from torch import nn


@dataclass(frozen=True)
class SADConfig:
    voxels: dict[str, int]  # subject -> voxel count
    tokens: int  # T of the target embedding (77 for CLIP)
    dim: int  # D of the target embedding (768 for CLIP ViT-L/14)
    hidden: int = 256  # shared space width (the schema's defaults; configs/cc2017.yaml sizes CLIP-scale runs)
    mlp_blocks: int = 4
    dropout: float = 0.15  # in the shared MLP's residual blocks
    attention_dropout: float = 0.0  # on the Refineformer's attention weights
    refine_width: int = 64
    refine_depth: int = 2
    refine_heads: int = 4
    diffusion_steps: int = 100  # training timesteps of the Refineformer's diffusion

    def to_dict(self) -> dict:
        return asdict(self)


class SubjectProjection(nn.Module):
    """One linear map per subject from its own voxels into the shared space."""

    def __init__(self, voxels: dict[str, int], hidden: int):
        super().__init__()
        self.maps = nn.ModuleDict({subject: nn.Linear(n, hidden) for subject, n in voxels.items()})

    def forward(self, x: torch.Tensor, subject: str) -> torch.Tensor:
        return self.maps[subject](x)  # [B, V_s] -> [B, hidden]


class ResidualBlock(nn.Module):
    def __init__(self, width: int, dropout: float):
        super().__init__()
        self.norm = nn.LayerNorm(width)
        self.fc = nn.Linear(width, width)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.drop(F.gelu(self.fc(self.norm(x))))


class ResidualMLP(nn.Module):
    """The subject-shared trunk: residual blocks, then a head to T x D tokens."""

    def __init__(self, config: SADConfig):
        super().__init__()
        self.blocks = nn.Sequential(*[ResidualBlock(config.hidden, config.dropout) for _ in range(config.mlp_blocks)])
        self.norm = nn.LayerNorm(config.hidden)
        self.head = nn.Linear(config.hidden, config.tokens * config.dim)
        self.tokens, self.dim = config.tokens, config.dim

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.head(self.norm(self.blocks(h))).view(-1, self.tokens, self.dim)  # [B, hidden] -> [B, T, D]


def timestep_embedding(t: torch.Tensor, width: int) -> torch.Tensor:
    """Sinusoidal embedding of integer timesteps: [B] -> [B, width]."""
    half = width // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, device=t.device) / half)
    angles = t.float()[:, None] * freqs[None]
    return torch.cat([angles.cos(), angles.sin()], dim=-1)


class CausalBlock(nn.Module):
    def __init__(self, width: int, heads: int, attention_dropout: float):
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(width), nn.LayerNorm(width)
        self.qkv = nn.Linear(width, 3 * width)
        self.proj = nn.Linear(width, width)
        self.mlp = nn.Sequential(nn.Linear(width, 4 * width), nn.GELU(), nn.Linear(4 * width, width))
        self.heads, self.attention_dropout = heads, attention_dropout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, length, width = x.shape
        q, k, v = self.qkv(self.norm1(x)).view(batch, length, 3, self.heads, width // self.heads).unbind(2)
        # With p > 0, drawing a mask for every attention weight costs more on CPU than the attention itself.
        attended = F.scaled_dot_product_attention(
            q.transpose(1, 2),
            k.transpose(1, 2),
            v.transpose(1, 2),
            is_causal=True,
            dropout_p=self.attention_dropout if self.training else 0.0,
        )  # [B, heads, L, width / heads]
        x = x + self.proj(attended.transpose(1, 2).reshape(batch, length, width))
        return x + self.mlp(self.norm2(x))


class Refineformer(nn.Module):
    """Causal transformer denoiser: sequence [condition tokens (T), timestep (1), noisy tokens (T)]; the outputs at
    the noisy positions predict the clean tokens. Each noisy token sees the whole condition, the timestep and the
    noisy tokens before it."""

    def __init__(self, config: SADConfig):
        super().__init__()
        width, tokens = config.refine_width, config.tokens
        self.condition_in = nn.Linear(config.dim, width)
        self.noisy_in = nn.Linear(config.dim, width)
        self.time_mlp = nn.Sequential(nn.Linear(width, width), nn.GELU(), nn.Linear(width, width))
        self.position = nn.Parameter(torch.zeros(1, 2 * tokens + 1, width))
        nn.init.normal_(self.position, std=0.02)
        self.blocks = nn.ModuleList(
            [CausalBlock(width, config.refine_heads, config.attention_dropout) for _ in range(config.refine_depth)]
        )
        self.norm = nn.LayerNorm(width)
        self.out = nn.Linear(width, config.dim)
        self.tokens, self.width = tokens, width

    def forward(self, noisy: torch.Tensor, t: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        """noisy, condition: [B, T, D]; t: [B] -> predicted clean tokens [B, T, D]."""
        time = self.time_mlp(timestep_embedding(t, self.width))[:, None]  # [B, 1, W]
        x = torch.cat([self.condition_in(condition), time, self.noisy_in(noisy)], dim=1) + self.position
        for block in self.blocks:
            x = block(x)
        return self.out(self.norm(x[:, self.tokens + 1 :]))


# The Refineformer predicts the clean tokens ("sample"), under the cosine alpha-bar of Nichol & Dhariwal (2021).
SCHEDULE = {"beta_schedule": "squaredcos_cap_v2", "prediction_type": "sample", "clip_sample": False}


def training_scheduler(steps: int) -> DDPMScheduler:
    return DDPMScheduler(num_train_timesteps=steps, **SCHEDULE)


def sampling_scheduler(steps: int) -> DDIMScheduler:
    """DDIM (eta 0) over the training schedule; "trailing" spacing starts at the last training step, and the final
    step lands on the clean estimate (alpha-bar 1)."""
    return DDIMScheduler(num_train_timesteps=steps, set_alpha_to_one=True, timestep_spacing="trailing", **SCHEDULE)


class SAD(nn.Module):
    def __init__(self, config: SADConfig):
        super().__init__()
        self.config = config
        self.projection = SubjectProjection(config.voxels, config.hidden)
        self.mlp = ResidualMLP(config)
        self.refiner = Refineformer(config)
        self.scheduler = training_scheduler(config.diffusion_steps)
        self.register_buffer("target_mean", torch.zeros(config.tokens, config.dim))
        self.register_buffer("target_std", torch.ones(config.tokens, config.dim))

    def set_target_statistics(self, targets: torch.Tensor) -> None:
        """targets [N, T, D] of the training set (raw embedding space)."""
        self.target_mean.copy_(targets.mean(0))
        self.target_std.copy_(targets.std(0).clamp(min=1e-3 * targets.std().item() + 1e-8))

    def normalize(self, targets: torch.Tensor) -> torch.Tensor:
        return (targets - self.target_mean) / self.target_std

    def denormalize(self, tokens: torch.Tensor) -> torch.Tensor:
        return tokens * self.target_std + self.target_mean

    def backbone(self, voxels: torch.Tensor, subject: str) -> torch.Tensor:
        """[B, V_s] -> Z_mlp [B, T, D] in the standardised target space."""
        return self.mlp(self.projection(voxels, subject))

    @torch.no_grad()
    def sample(
        self, condition: torch.Tensor, steps: int, strength: float, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """DDIM conditioned on Z_mlp [B, T, D] -> refined tokens [B, T, D]. Like diffusers' img2img pipelines:
        `steps` spans the whole schedule and `strength` < 1 runs only its last round(steps * strength) steps,
        starting from Z_mlp noised to that point (SDEdit); strength 1 starts from Gaussian noise."""
        scheduler = sampling_scheduler(self.config.diffusion_steps)
        scheduler.set_timesteps(steps, device=condition.device)
        timesteps = scheduler.timesteps[steps - max(1, min(steps, round(steps * strength))) :]  # descending
        noise = torch.randn(condition.shape, generator=generator, device="cpu").to(condition.device)
        x = noise if strength >= 1 else scheduler.add_noise(condition, noise, timesteps[:1])
        for t in timesteps:
            x0 = self.refiner(x, t.expand(len(x)), condition)
            x = scheduler.step(x0, t, x).prev_sample
        return x

    @torch.no_grad()
    def decode(
        self,
        voxels: torch.Tensor,
        subject: str,
        refine: bool = True,
        steps: int = 10,
        strength: float = 0.3,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """[B, V_s] -> predicted embeddings [B, T, D] in the raw target space (the MLP's, or refined)."""
        condition = self.backbone(voxels, subject)
        return self.denormalize(self.sample(condition, steps, strength, generator) if refine else condition)
