"""Retrieval in embedding space: is the prediction for a clip closer (cosine) to its own target than to every
other clip's? Top-1 accuracy among all candidates. Clips of one scene often share a caption, hence an identical
target: such duplicates are one candidate, so chance is 1 / (number of distinct targets)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def comparable_targets(predictions: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """The targets in the predictions' form: a prediction with a single token (a pooled baseline, `ridge.target:
    pooled`) is compared with the token mean of the targets."""
    if predictions.dim() == 3 and predictions.shape[1] == 1 and targets.shape[1] != 1:
        return targets.mean(1, keepdim=True)
    return targets


def similarity(predictions: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """[N, ...] x [M, ...] -> [N, M] cosine similarity of the flattened embeddings (see comparable_targets)."""
    targets = comparable_targets(predictions, targets)
    return F.normalize(predictions.flatten(1).float(), dim=-1) @ F.normalize(targets.flatten(1).float(), dim=-1).T


def distinct(targets: torch.Tensor) -> torch.Tensor:
    """[N, N] bool: target j differs from target i. Exact equality, as chance_top1 counts them: torch.cdist computes
    distances of more than 25 rows through a matrix product, which puts identical rows up to 0.1 apart."""
    _, caption = torch.unique(targets.flatten(1), dim=0, return_inverse=True)
    return caption[:, None] != caption[None, :]


def top1_accuracy(predictions: torch.Tensor, targets: torch.Tensor) -> float:
    """Fraction of clips whose own target is strictly the most similar among all distinct targets; a prediction
    that is not finite retrieves nothing (NaN compares false, so it would have no rivals)."""
    scores = similarity(predictions, targets)
    rivals = ((scores >= scores.diagonal()[:, None]) & distinct(targets)).sum(dim=1)
    hits = (rivals == 0) & scores.diagonal().isfinite()
    return hits.float().mean().item() if len(scores) else float("nan")


def chance_top1(targets: torch.Tensor) -> float:
    """Top-1 accuracy of a random ranking: one over the number of distinct targets."""
    return 1.0 / len(torch.unique(targets.flatten(1), dim=0))
