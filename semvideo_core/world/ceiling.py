"""A noise ceiling for decoding the demo world: the same read-out fit on the world's noise-free responses.

The world keeps every subject's noise-free stimulus response (ground_truth.h5, subject{k}/signal/{movie}). Cut to
the movie window with the preprocessing's own trimming rule and lag, restricted to the voxels preprocessing
selected and z-scored per movie, it is what the fMRI would be without measurement noise. Ridge regression from it
to the caption embeddings (alpha by cross-validation, as the ridge baseline) gives the retrieval a linear read-out
of these voxels reaches without noise: an estimate of the ceiling for any decoder of the noisy data.
"""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import torch

from ..data.preprocess import PreprocessConfig, movie_window
from ..embed import load_embeddings
from ..metrics.retrieval import top1_accuracy
from ..ridge import fit_ridge, predict_ridge

ALPHAS = [0.01, 0.1, 1, 10, 100, 1000, 10000]


def _noise_free(truth: h5py.Group, config: PreprocessConfig, columns: np.ndarray, clip_ids: list[str]) -> np.ndarray:
    """[clips, V]: the noise-free response paired with every clip id (movie_clip)."""
    movies: dict[str, np.ndarray] = {}
    rows = []
    for clip_id in clip_ids:
        movie, number = clip_id.rsplit("_", 1)
        if movie not in movies:
            signal = truth[f"signal/{movie}"][:]
            window = signal[movie_window(len(signal), config, movie)][:, columns]
            movies[movie] = (window - window.mean(0)) / (window.std(0) + 1e-8)
        rows.append(movies[movie][int(number) - 1])
    return np.stack(rows)


def noise_free_ceiling(workdir: str | Path, level: str, subjects: list[str], dataset: str = "demo") -> float:
    """Mean over subjects of the top-1 test retrieval of ridge on noise-free responses."""
    workdir = Path(workdir)
    embeds, ids = load_embeddings(workdir / "data" / dataset / "embeds" / f"{level}.safetensors")
    index = {c: i for i, c in enumerate(ids)}
    scores = []
    with h5py.File(workdir / "data" / dataset / "raw" / "ground_truth.h5", "r") as truth:
        for subject in subjects:
            with h5py.File(workdir / "data" / dataset / "fmri" / f"{subject}.h5", "r") as h5:
                settings = json.loads(h5.attrs["preprocessing"])
                columns = h5["voxel_index"][:]
                train_ids = [c.decode() for c in h5["train_clip_id"][:]]
                test_ids = [c.decode() for c in h5["test_clip_id"][:]]
            trim = {int(n): tuple(v) for n, v in settings["trim"].items()}
            config = PreprocessConfig(trim=trim, lag_trs=settings["lag_trs"])
            train_x = _noise_free(truth[subject], config, columns, train_ids)
            test_x = _noise_free(truth[subject], config, columns, test_ids)
            train_y = embeds[[index[c] for c in train_ids]]
            test_y = embeds[[index[c] for c in test_ids]]
            model, scaling = fit_ridge(train_x, train_y.flatten(1).numpy(), ALPHAS)
            predicted = torch.from_numpy(predict_ridge(model, scaling, test_x)).float().view(test_y.shape)
            scores.append(top1_accuracy(predicted, test_y))
    return float(np.mean(scores))
