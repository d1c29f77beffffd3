"""Losses of the decoders. SAD: L_SAD = lambda_refine * L_refine + lambda_SoftCLIP * L_SoftCLIP + L_MSE.
MAD: L_MAD = w_l1 * L1(latents) + w_frame * InfoNCE(frames within a clip) + w_clip * InfoNCE(clips in a batch)."""

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


# -- MAD ---------------------------------------------------------------------------------------------------------


def info_nce(predictions: torch.Tensor, targets: torch.Tensor, temperature: float) -> torch.Tensor:
    """Bidirectional InfoNCE over the second-to-last axis: predictions, targets [..., n, K], L2-normalised per row;
    row i of the predictions should be closest to row i of the targets among the n, and vice versa."""
    p, t = F.normalize(predictions, dim=-1), F.normalize(targets, dim=-1)
    logits = p @ t.transpose(-1, -2) / temperature  # [..., n, n]
    labels = torch.arange(logits.shape[-1], device=logits.device).expand(logits.shape[:-1])
    forward = F.cross_entropy(logits.flatten(0, -2), labels.flatten())
    backward = F.cross_entropy(logits.transpose(-1, -2).flatten(0, -2), labels.flatten())
    return (forward + backward) / 2


@dataclass(frozen=True)
class MADLossWeights:
    l1: float = 1.0  # L1 on the latents
    frame_contrastive: float = 0.1  # each frame closest to its own target among the clip's frames
    clip_contrastive: float = 0.1  # each clip closest to its own target within the batch
    temperature: float = 0.1


def mad_loss(predicted: torch.Tensor, targets: torch.Tensor, latent_mean: torch.Tensor, weights: MADLossWeights):
    """predicted, targets: latents [B, T, C, h, w]; latent_mean [T, C, h, w] (the training mean) ->
    (total loss, {name: value}).

    The frame term compares each frame's deviation from its clip's mean frame (the motion), the clip term each
    clip's deviation from the training mean, so neither is dominated by what all frames or all clips share."""
    l1 = F.l1_loss(predicted, targets)
    frames_p = (predicted - predicted.mean(1, keepdim=True)).flatten(2)  # [B, T, C h w]
    frames_t = (targets - targets.mean(1, keepdim=True)).flatten(2)
    frame = info_nce(frames_p, frames_t, weights.temperature)
    clips_p, clips_t = (predicted - latent_mean).flatten(1), (targets - latent_mean).flatten(1)  # [B, T C h w]
    clip = info_nce(clips_p, clips_t, weights.temperature) if len(predicted) > 1 else l1.new_zeros(())
    total = weights.l1 * l1 + weights.frame_contrastive * frame + weights.clip_contrastive * clip
    return total, {"l1": l1.item(), "frame_nce": frame.item(), "clip_nce": clip.item()}
