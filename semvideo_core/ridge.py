"""Variant `ridge`: regularised linear regression from voxels to caption embeddings, alpha by cross-validation.

Targets are the embeddings flattened (T x D outputs) or pooled (the token mean, D outputs); training uses the
presentation average of every training clip. scikit-learn's RidgeCV picks one alpha for all outputs by efficient
leave-one-out cross-validation (GCV); voxels and targets are standardised with training statistics.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch
from sklearn.linear_model import RidgeCV

from .embed import load_embeddings
from .metrics.retrieval import top1_accuracy
from .sad_stage import load_subject, write_predictions

log = logging.getLogger(__name__)
TARGETS = ("flattened", "pooled")


def fit_ridge(train_x: np.ndarray, train_y: np.ndarray, alphas: list[float]) -> tuple[RidgeCV, dict]:
    """[N, V], [N, K] -> (fitted model on standardised data, the standardisation)."""
    x_mean, x_std = train_x.mean(0), train_x.std(0) + 1e-8
    y_mean, y_std = train_y.mean(0), train_y.std(0) + 1e-8
    model = RidgeCV(alphas=alphas, fit_intercept=False).fit((train_x - x_mean) / x_std, (train_y - y_mean) / y_std)
    return model, {"x_mean": x_mean, "x_std": x_std, "y_mean": y_mean, "y_std": y_std}


def predict_ridge(model: RidgeCV, scaling: dict, x: np.ndarray) -> np.ndarray:
    return model.predict((x - scaling["x_mean"]) / scaling["x_std"]) * scaling["y_std"] + scaling["y_mean"]


def ridge_decode(fmri_path, embeds_path, out_path, alphas: list[float], target: str = "flattened") -> float:
    """Fit on the subject's training clips, predict its test clips; -> top-1 retrieval among the test clips."""
    if target not in TARGETS:
        raise ValueError(f"ridge target must be one of {TARGETS}, got {target!r}")
    embeds, ids = load_embeddings(embeds_path)
    subject = load_subject(fmri_path, embeds, ids)
    targets = subject.train_targets.mean(1, keepdim=True) if target == "pooled" else subject.train_targets
    shape = targets.shape[1:]
    model, scaling = fit_ridge(subject.train.mean(1).numpy(), targets.flatten(1).numpy(), alphas)
    predicted = torch.from_numpy(predict_ridge(model, scaling, subject.test.numpy())).float().view(-1, *shape)
    write_predictions(
        out_path, {"embeds": predicted}, subject.test_ids, {"alpha": float(model.alpha_), "target": target}
    )
    top1 = top1_accuracy(predicted, subject.test_targets)
    log.info("%s: ridge alpha %.3g (%s); top-1 retrieval %.3f", Path(out_path).name, model.alpha_, target, top1)
    return top1
