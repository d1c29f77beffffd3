"""Losses of the decoders. SAD: L_SAD = lambda_refine * L_refine + lambda_SoftCLIP * L_SoftCLIP + L_MSE."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .sad import SAD


def soft_clip_loss(predictions: torch.Tensor, targets: torch.Tensor, temperature: float) -> torch.Tensor:
    """SoftCLIP (MindEye): contrastive loss whose labels are soft, the softmax of target-target similarity.

    predictions, targets: [B, ...], flattened and L2-normalised per sample. Symmetric: the mean of the
    brain->target and target->brain cross-entropies against softmax(targets @ targets.T / temperature)."""
    p = F.normalize(predictions.flatten(1), dim=-1)
    t = F.normalize(targets.flatten(1), dim=-1)
    soft_labels = (t @ t.T / temperature).softmax(dim=-1)  # [B, B]
    logits = p @ t.T / temperature  # [B, B]: brain i vs target j
    brain_to_target = -(logits.log_softmax(dim=-1) * soft_labels).sum(-1).mean()
    target_to_brain = -(logits.T.log_softmax(dim=-1) * soft_labels).sum(-1).mean()
    return (brain_to_target + target_to_brain) / 2


@dataclass(frozen=True)
class SADLossWeights:
    refine: float = 1.0  # lambda_refine
    soft_clip: float = 1.0  # lambda_SoftCLIP
    temperature: float = 0.05  # SoftCLIP temperature
    mse: float = 1.0  # L_MSE's weight: 1 in the paper, a knob for ablations


def sad_loss(model: SAD, voxels: torch.Tensor, subject: str, targets: torch.Tensor, weights: SADLossWeights):
    """targets: [B, T, D] in the raw embedding space -> (total loss, {name: value}).

    L_MSE and L_SoftCLIP act on the MLP's output; L_refine is the Refineformer's clean-token prediction error on
    the target noised to a random diffusion step, conditioned on the MLP's output."""
    x0 = model.normalize(targets)
    condition = model.backbone(voxels, subject)  # [B, T, D]
    mse = F.mse_loss(condition, x0)
    soft_clip = soft_clip_loss(condition, x0, weights.temperature)
    t = torch.randint(0, model.scheduler.config.num_train_timesteps, (len(x0),), device=x0.device)
    noisy = model.scheduler.add_noise(x0, torch.randn_like(x0), t)
    refine = F.mse_loss(model.refiner(noisy, t, condition), x0)
    total = weights.refine * refine + weights.soft_clip * soft_clip + weights.mse * mse
    return total, {"mse": mse.item(), "soft_clip": soft_clip.item(), "refine": refine.item()}
