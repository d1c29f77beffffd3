"""How close decoded embeddings come to their targets feature by feature, across the test clips. Retrieval
(retrieval.py) only ranks: a decoder can pick a clip's own caption out of the others and still lie farther from
every caption than the mean caption does, which is what a generator conditioned on the decode sees."""

from __future__ import annotations

import numpy as np
import torch
from scipy.stats import permutation_test

from .retrieval import comparable_targets


def _features(predictions: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Both as float64 [N, F], the targets token-averaged for a pooled prediction; an error if they differ."""
    targets = comparable_targets(predictions, targets)
    if predictions.shape != targets.shape:
        raise ValueError(f"predictions {tuple(predictions.shape)} do not match targets {tuple(targets.shape)}")
    return predictions.flatten(1).double(), targets.flatten(1).double()


def _varies(values: torch.Tensor) -> torch.Tensor:
    """[N, F] -> [F] bool: the feature varies across the N clips by more than float rounding of its size."""
    return (values - values.mean(0)).norm(dim=0) > 1e-9 * values.norm(dim=0)


def feature_correlation(predictions: torch.Tensor, targets: torch.Tensor) -> float:
    """[N, ...] x [N, ...] -> the mean over features (token x channel) of the Pearson correlation across the N clips
    of prediction and target; features constant across the clips in either are left out (their r is undefined).
    NaN if any value is not finite."""
    x, y = _features(predictions, targets)
    if not (x.isfinite().all() and y.isfinite().all()):
        return float("nan")
    live = _varies(x) & _varies(y)
    x, y = x - x.mean(0), y - y.mean(0)
    scale = x.norm(dim=0) * y.norm(dim=0)
    return ((x * y).sum(0)[live] / scale[live]).mean().item() if live.any() else float("nan")


def r_squared(predictions: torch.Tensor, targets: torch.Tensor) -> float:
    """1 - (squared error summed over clips and features) / (the targets' squared deviation from their mean over
    the clips, summed the same way), over the features that vary across the clips: scikit-learn's variance-weighted
    R². Below 0: the decodes are farther from the truth than the test clips' mean target."""
    x, y = _features(predictions, targets)
    spread = ((y - y.mean(0)) ** 2).sum(0)
    live = _varies(y)
    return (1 - ((x - y) ** 2).sum(0)[live].sum() / spread[live].sum()).item() if live.any() else float("nan")


def mean_correlation_test(
    predictions: np.ndarray, target: np.ndarray, resamples: int = 100_000, seed: int = 0
) -> tuple[float, float]:
    """[S, N] x [N] -> (the mean over the S rows of their Pearson correlation with the target across the N clips, its
    one-sided permutation p). The null shuffles the target, the same shuffle for every row, so rows that depend on one
    another (subjects' decoders sharing a pretraining) are tested as they are; like pearsonr's p it treats the clips
    as exchangeable. scipy's permutation_test, exact when N! <= resamples."""

    def unit(x):  # centred and scaled to unit norm along the clips
        centred = x - x.mean(-1, keepdims=True)
        return centred / np.linalg.norm(centred, axis=-1, keepdims=True)

    rows = unit(np.asarray(predictions, np.float64))

    def mean_r(shuffled, axis=-1):  # [..., N] shuffles of the target -> [...]; scipy passes axis=-1
        return (unit(shuffled) @ rows.T).mean(-1)

    result = permutation_test(
        (np.asarray(target, np.float64),),
        mean_r,
        permutation_type="pairings",
        vectorized=True,
        n_resamples=resamples,
        alternative="greater",
        rng=np.random.default_rng(seed),
    )
    return float(result.statistic), float(result.pvalue)
