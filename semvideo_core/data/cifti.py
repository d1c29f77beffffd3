"""CIFTI-2 dense time series (`.dtseries.nii`): written with nibabel; read with nibabel's NIfTI-2 header
parser, ElementTree for the brain models in the CIFTI XML, and one sequential read of the data."""

from __future__ import annotations

import functools
from xml.etree import ElementTree
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np
from nibabel.cifti2 import BrainModelAxis, SeriesAxis
from nibabel.nifti2 import Nifti2Header
from nibabel.spatialimages import HeaderDataError

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


CORTEX_STRUCTURES = ("CIFTI_STRUCTURE_CORTEX_LEFT", "CIFTI_STRUCTURE_CORTEX_RIGHT")
CIFTI_EXTENSION_CODE = 32


@dataclass(frozen=True)
class Grayordinates:
    """The column layout of a dense CIFTI file: (structure name, first column, count) per brain model."""

    models: tuple[tuple[str, int, int], ...]

    @property
    def count(self) -> int:
        return sum(n for _, _, n in self.models)

    def columns(self, structures: tuple[str, ...], source: str | Path) -> np.ndarray | slice:
        """Columns of the named structures in file order: a slice when they are contiguous (no copy on indexing)."""
        present = [name for name, _, _ in self.models]
        missing = [s for s in structures if s not in present]
        if missing:
            raise ValueError(f"{source}: no grayordinates of {missing}; the file has {present}")
        ranges = [(offset, offset + n) for name, offset, n in self.models if name in structures]
        if all(a[1] == b[0] for a, b in zip(ranges, ranges[1:])):
            return slice(ranges[0][0], ranges[-1][1])
        return np.concatenate([np.arange(a, b) for a, b in ranges])


@functools.lru_cache(maxsize=8)
def _parse_grayordinates(cifti_xml: bytes) -> Grayordinates:
    """The brain models of the column axis, from the CIFTI-2 XML. ElementTree reads just the attributes needed;
    nibabel's full parse turns every vertex and voxel index into Python objects (~0.3 s for 91k grayordinates)."""
    root = ElementTree.fromstring(cifti_xml)
    for index_map in root.iter("MatrixIndicesMap"):
        if "1" in index_map.get("AppliesToMatrixDimension", "").split(","):
            kind = index_map.get("IndicesMapToDataType")
            if kind != "CIFTI_INDEX_TYPE_BRAIN_MODELS":
                raise ValueError(f"columns are {kind}, not grayordinates")
            models = index_map.iter("BrainModel")
            return Grayordinates(
                tuple((m.get("BrainStructure"), int(m.get("IndexOffset")), int(m.get("IndexCount"))) for m in models)
            )
    raise ValueError("the CIFTI XML has no column (dimension 1) index map")


def read_series(path: str | Path, select=None) -> tuple[np.ndarray, Grayordinates, np.ndarray]:
    """Read a dense time series: ([volumes, columns] float32, the file's layout, [columns] the grayordinates read).

    `select(layout, path)` -> columns (slice or indices) reads only those: NIfTI stores each grayordinate's series
    contiguously, so just the block spanning them is read from disk (for CC2017's cortex, 65% of the file). The
    NIfTI-2 header is parsed by nibabel; a missing, truncated or non-CIFTI file raises an error naming it.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: CIFTI file is missing")
    try:
        with open(path, "rb") as handle:
            header = Nifti2Header.from_fileobj(handle)
            extensions = [e for e in header.extensions if e.get_code() == CIFTI_EXTENSION_CODE]
            if not extensions:
                raise ValueError("no CIFTI extension in the NIfTI-2 header")
            layout = _parse_grayordinates(bytes(extensions[0].content))
            shape = header.get_data_shape()
            if len(shape) != 6 or shape[:4] != (1, 1, 1, 1) or shape[5] != layout.count:
                raise ValueError(f"data shape {shape} does not fit {layout.count} grayordinates")
            n_volumes = shape[4]
            columns = select(layout, path) if select is not None else slice(0, layout.count)
            indices = np.arange(layout.count)[columns] if isinstance(columns, slice) else np.asarray(columns)
            first, stop = (int(indices.min()), int(indices.max()) + 1) if indices.size else (0, 0)
            dtype = header.get_data_dtype()
            handle.seek(int(header["vox_offset"]) + first * n_volumes * dtype.itemsize)
            n_values = (stop - first) * n_volumes
            data = np.fromfile(handle, dtype=dtype, count=n_values)
    except (OSError, ValueError, EOFError, HeaderDataError, ElementTree.ParseError) as error:
        raise ValueError(f"{path}: not a readable CIFTI-2 dense time series ({error})") from error
    if data.size != n_values:
        raise ValueError(f"{path}: truncated: {data.size} of {n_values} values present")
    data = data.reshape(stop - first, n_volumes).T  # NIfTI stores the first axis fastest: time varies fastest on disk
    if not (isinstance(columns, slice) and indices.size == stop - first):
        data = data[:, indices - first]
    slope, inter = header.get_slope_inter()
    if slope is not None and (slope != 1 or inter):
        data = data * slope + inter
    return data.astype(np.float32, copy=False), layout, indices


def cortex_columns(layout: Grayordinates, source: str | Path, expected: int | None = None) -> np.ndarray | slice:
    """Columns of the cortical surface vertices of both hemispheres (59,412 in CC2017 files), count checked."""
    columns = layout.columns(CORTEX_STRUCTURES, source)
    count = len(range(layout.count)[columns]) if isinstance(columns, slice) else len(columns)
    if expected is not None and count != expected:
        raise ValueError(f"{source}: {count} cortical surface vertices, expected {expected}")
    return columns
