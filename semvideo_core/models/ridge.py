"""The linear baseline: ridge regression on standardised voxels and targets, one alpha for all outputs chosen by
scikit-learn's efficient leave-one-out cross-validation (GCV)."""

from __future__ import annotations

import numpy as np
from sklearn.linear_model import RidgeCV


def fit_ridge(train_x: np.ndarray, train_y: np.ndarray, alphas: list[float]) -> tuple[RidgeCV, dict]:
    """[N, V], [N, K] -> (fitted model on standardised data, the standardisation)."""
    x_mean, x_std = train_x.mean(0), train_x.std(0) + 1e-8
    y_mean, y_std = train_y.mean(0), train_y.std(0) + 1e-8
    model = RidgeCV(alphas=alphas, fit_intercept=False).fit((train_x - x_mean) / x_std, (train_y - y_mean) / y_std)
    return model, {"x_mean": x_mean, "x_std": x_std, "y_mean": y_mean, "y_std": y_std}


def predict_ridge(model: RidgeCV, scaling: dict, x: np.ndarray) -> np.ndarray:
    """[N, V] -> [N, K] in the raw target space."""
    return model.predict((x - scaling["x_mean"]) / scaling["x_std"]) * scaling["y_std"] + scaling["y_mean"]
