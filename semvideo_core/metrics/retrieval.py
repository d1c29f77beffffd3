"""Retrieval in embedding space: is the prediction for a clip closer (cosine) to its own target than to every
other clip's? Top-1 accuracy among all candidates. Clips of one scene often share a caption, hence an identical
target: such duplicates are one candidate, so chance is 1 / (number of distinct targets)."""

from __future__ import annotations

import csv
from pathlib import Path

import torch
import torch.nn.functional as F

from ..atomic import atomic_output


def similarity(predictions: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """[N, ...] x [M, ...] -> [N, M] cosine similarity of the flattened embeddings. A prediction with a single token
    (a pooled baseline) is compared with the token mean of the targets."""
    if predictions.dim() == 3 and predictions.shape[1] == 1 and targets.shape[1] != 1:
        targets = targets.mean(1, keepdim=True)
    return F.normalize(predictions.flatten(1).float(), dim=-1) @ F.normalize(targets.flatten(1).float(), dim=-1).T


def distinct(targets: torch.Tensor) -> torch.Tensor:
    """[N, N] bool: target j differs from target i."""
    flat = targets.flatten(1)
    return torch.cdist(flat.float(), flat.float()) > 1e-6 * flat.float().norm(dim=1).max().clamp(min=1e-12)


def top1_accuracy(predictions: torch.Tensor, targets: torch.Tensor) -> float:
    """Fraction of clips whose own target is strictly the most similar among all distinct targets."""
    scores = similarity(predictions, targets)
    rivals = ((scores >= scores.diagonal()[:, None]) & distinct(targets)).sum(dim=1)
    return (rivals == 0).float().mean().item() if len(scores) else float("nan")


def chance_top1(targets: torch.Tensor) -> float:
    """Top-1 accuracy of a random ranking: one over the number of distinct targets."""
    return 1.0 / len(torch.unique(targets.flatten(1), dim=0))


def write_retrieval_table(prediction_paths: list[str | Path], embed_paths: list[str | Path], out_path) -> list[dict]:
    """CSV of variant, subject, level, n_test, top1, chance for predictions at .../{variant}/{subject}/{level}.safetensors,
    scored against the embed_text output of their level (matched by file stem); SAD's MLP-only estimate is scored
    as variant sad_mlp."""
    from ..embed import load_embeddings

    targets = {Path(p).stem: load_embeddings(p) for p in embed_paths}
    rows = []
    for path in map(Path, prediction_paths):
        embeds, ids = targets[path.stem]
        index = {c: i for i, c in enumerate(ids)}
        for key, suffix in (("embeds", ""), ("embeds_mlp", "_mlp")):  # SAD also writes its MLP-only estimate
            try:
                predicted, clip_ids = load_embeddings(path, key)
            except KeyError:
                continue
            own = embeds[[index[c] for c in clip_ids]]
            rows.append(
                {
                    "variant": path.parent.parent.name + suffix,
                    "subject": path.parent.name,
                    "level": path.stem,
                    "n_test": len(clip_ids),
                    "top1": round(top1_accuracy(predicted, own), 4),
                    "chance": round(chance_top1(own), 4),
                }
            )
    with atomic_output(out_path) as tmp, open(tmp, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]) if rows else ["variant"])
        writer.writeheader()
        writer.writerows(rows)
    return rows
