"""CIFTI-2 dense time series (`.dtseries.nii`), read and written with nibabel."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
from nibabel.cifti2 import BrainModelAxis, SeriesAxis

from ..atomic import atomic_output

# 2-mm MNI152 grid of the HCP 91k grayordinates, where the subcortical voxels live.
MNI_2MM_SHAPE = (91, 109, 91)
MNI_2MM_AFFINE = np.array([[-2.0, 0, 0, 90], [0, 2, 0, -126], [0, 0, 2, -72], [0, 0, 0, 1]])


def write_dtseries(path: str | Path, data: np.ndarray, brain_models: BrainModelAxis, tr: float) -> None:
    """Write `data` [volumes, grayordinates] as a CIFTI-2 dense time series with a TR of `tr` seconds."""
    data = np.asarray(data, dtype=np.float32)
    if data.shape[1] != len(brain_models):
        raise ValueError(f"{path}: {data.shape[1]} columns for {len(brain_models)} grayordinates")
    series = SeriesAxis(start=0.0, step=tr, size=data.shape[0], unit="SECOND")
    image = nib.Cifti2Image(data, header=(series, brain_models))
    image.nifti_header.set_intent("ConnDenseSeries")
    with atomic_output(path) as tmp:
        image.to_filename(tmp)


def surface_brain_models(
    left_vertices: np.ndarray,
    right_vertices: np.ndarray,
    surface_sizes: tuple[int, int],
    subcortical_ijk: dict[str, np.ndarray] | None = None,
) -> BrainModelAxis:
    """Cortical surface vertices of both hemispheres, then optional subcortical voxels (structure -> [n, 3] ijk)."""
    axis = BrainModelAxis.from_surface(left_vertices, surface_sizes[0], name="CortexLeft")
    axis = axis + BrainModelAxis.from_surface(right_vertices, surface_sizes[1], name="CortexRight")
    for structure, ijk in (subcortical_ijk or {}).items():
        mask = np.zeros(MNI_2MM_SHAPE, dtype=bool)
        mask[tuple(np.asarray(ijk).T)] = True
        axis = axis + BrainModelAxis.from_mask(mask, name=structure, affine=MNI_2MM_AFFINE)
    return axis
