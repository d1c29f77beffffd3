"""Per-clip array stores in HDF5: one array with a leading clip axis plus the `clip_id` of every row, the layout
of the clip files (`data/{dataset}/clips/{split}.h5`, array `frames`). Used for VAE latents
(`data/{dataset}/latents/{split}.h5`, `latents` [N, T, C, h, w] float16) and MAD's predictions
(`predictions/{dataset}/{variant}/{subject}/motion_latents.h5` and `motion_frames.h5`, `frames` uint8
[N, T, H, W, 3]). Written atomically, one chunk per clip; settings go in the attributes as JSON."""

from __future__ import annotations

import json

import h5py
import numpy as np

from .atomic import atomic_output
from .fmri import decode_strings


def write_clip_array(path, name: str, array: np.ndarray, clip_ids: list[str], attrs: dict | None = None) -> None:
    if len(array) != len(clip_ids):
        raise ValueError(f"{path}: {name} has {len(array)} rows for {len(clip_ids)} clip ids")
    with atomic_output(path) as tmp, h5py.File(tmp, "w") as h5:
        chunks = (1, *array.shape[1:]) if len(array) else None
        h5.create_dataset(name, data=array, chunks=chunks)
        h5.create_dataset("clip_id", data=list(clip_ids), dtype=h5py.string_dtype("utf-8"))
        for key, value in (attrs or {}).items():
            h5.attrs[key] = json.dumps(value)


def read_clip_array(path, name: str, clip_ids: list[str] | None = None) -> tuple[np.ndarray, list[str]]:
    """(the array, its clip ids); with `clip_ids`, just those rows in that order (a missing id names the file)."""
    try:
        with h5py.File(path, "r") as h5:
            ids = decode_strings(h5["clip_id"][:])
            data = h5[name]
            if clip_ids is None:
                return data[:], ids
            index = {clip: i for i, clip in enumerate(ids)}
            missing = [c for c in clip_ids if c not in index]
            if missing:
                raise ValueError(f"{path}: {len(missing)} clips are missing from {name}: {missing[:5]}")
            rows = np.array([index[c] for c in clip_ids], dtype=int)
            order = np.argsort(rows)  # h5py reads increasing indices; restore the requested order afterwards
            picked = data[rows[order]] if len(rows) else data[:0]
            result = np.empty_like(picked)
            result[order] = picked
            return result, list(clip_ids)
    except (OSError, KeyError) as error:
        raise ValueError(f"{path}: no {name!r} array with clip ids ({error})") from error


def read_attrs(path) -> dict:
    with h5py.File(path, "r") as h5:
        return {k: json.loads(v) for k, v in h5.attrs.items() if isinstance(v, str)}
