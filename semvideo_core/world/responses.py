"""The demo world's noise-free responses, paired with the pipeline's clips: what each clip's fMRI would be without
measurement noise (ground_truth.h5, subject{k}/signal/{run}, the stimulus response before drift, AR(1) and white
noise are added). A decoder fitted on them instead of the measured fMRI shows how much of a target the world's
encoding model lets these voxels carry at all: the noise ceilings that the benchmarks print beside each decoder.
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np

from ..data.preprocess import PreprocessConfig, movie_window
from ..io.clip_ids import parse_clip_id
from ..io.fmri import FMRIData, read_fmri

# Ridge penalties for decoders fit on noise-free responses (the measured-fMRI baselines' grid starts at 1, too
# strong where there is no noise to shrink against).
CEILING_ALPHAS = [0.01, 0.1, 1, 10, 100, 1000, 10000]


def noise_free_responses(truth: h5py.Group, config: PreprocessConfig, columns, clip_ids: list[str]) -> np.ndarray:
    """[clips, V]: one subject's noise-free response (`truth` = its ground-truth group) paired with every clip id by
    the preprocessing's own trimming rule and lag, restricted to `columns` (the voxels preprocessing selected) and
    z-scored per movie."""
    movies: dict[str, np.ndarray] = {}
    rows = []
    for clip in clip_ids:
        movie, index = parse_clip_id(clip)
        if movie not in movies:
            signal = truth[f"signal/{movie}"][:]
            window = signal[movie_window(len(signal), config, movie)][:, columns]
            movies[movie] = (window - window.mean(0)) / (window.std(0) + 1e-8)
        rows.append(movies[movie][index])
    return np.stack(rows)


def noise_free_fmri(ground_truth: str | Path, fmri_path: str | Path) -> tuple[np.ndarray, np.ndarray, FMRIData]:
    """(train [N, V], test [N_test, V], the measured fMRI file): the noise-free responses of the clips and voxels of
    a preprocessed fMRI file (`data/{dataset}/fmri/{subject}.h5`, whose stem names the subject's ground truth),
    paired as that file's preprocessing paired them."""
    fmri = read_fmri(fmri_path)
    trim = {int(n): tuple(v) for n, v in fmri.preprocessing["trim"].items()}
    config = PreprocessConfig(trim=trim, lag_trs=fmri.preprocessing["lag_trs"])
    subject = Path(fmri_path).stem
    with h5py.File(ground_truth, "r") as handle:
        if subject not in handle:
            raise KeyError(f"{ground_truth}: no ground truth for {subject} (has {sorted(handle)})")
        truth = handle[subject]
        train = noise_free_responses(truth, config, fmri.voxel_index, fmri.train_ids)
        test = noise_free_responses(truth, config, fmri.voxel_index, fmri.test_ids)
    return train, test, fmri
