"""The preprocessed fMRI store, `data/{dataset}/fmri/{subject}.h5` (written by semvideo_core.data.preprocess):
`train` [N_train, reps, V] (or [N_train, V] averaged), `test` [N_test, V], `train_clip_id`, `test_clip_id`,
`voxel_index` [V] (grayordinate columns of the raw files) and the preprocessing settings in the attributes."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np


@dataclass
class FMRIData:
    train: np.ndarray  # [N_train, reps, V] float32 (reps 1 when preprocessing averaged them)
    test: np.ndarray  # [N_test, V] float32, presentations averaged
    train_ids: list[str]
    test_ids: list[str]
    voxel_index: np.ndarray  # [V] grayordinate columns of the raw files
    preprocessing: dict  # the settings preprocessing ran with (trimming, lag, ...)


def decode_strings(values) -> list[str]:
    return [v.decode() if isinstance(v, bytes) else str(v) for v in values]


def read_fmri(path: str | Path) -> FMRIData:
    """One subject's preprocessed fMRI; a missing dataset or mismatched lengths name the file."""
    try:
        with h5py.File(path, "r") as h5:
            train = np.asarray(h5["train"], dtype=np.float32)
            test = np.asarray(h5["test"], dtype=np.float32)
            train_ids, test_ids = decode_strings(h5["train_clip_id"][:]), decode_strings(h5["test_clip_id"][:])
            voxel_index = h5["voxel_index"][:]
            preprocessing = json.loads(h5.attrs.get("preprocessing", "{}"))
    except (OSError, KeyError) as error:
        raise ValueError(f"{path}: not a preprocessed fMRI file ({error})") from error
    if train.ndim == 2:  # presentations averaged by preprocessing
        train = train[:, None]
    if len(train) != len(train_ids) or len(test) != len(test_ids):
        raise ValueError(
            f"{path}: {len(train)} / {len(test)} train / test rows for {len(train_ids)} / {len(test_ids)} ids"
        )
    if train.shape[-1] != test.shape[-1] or test.shape[-1] != len(voxel_index):
        raise ValueError(f"{path}: train, test and voxel_index disagree on the voxel count")
    return FMRIData(train, test, train_ids, test_ids, voxel_index, preprocessing)
