"""CIFTI-2 dense time series (`.dtseries.nii`): written with nibabel; read with nibabel's NIfTI-2 header
parser, ElementTree for the brain models in the CIFTI XML, and one sequential read of the data."""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from pathlib import Path
from xml.etree import ElementTree

import nibabel as nib
import numpy as np
from nibabel.cifti2 import BrainModelAxis, SeriesAxis
from nibabel.nifti2 import Nifti2Header
from nibabel.spatialimages import HeaderDataError

from ..io.atomic import atomic_output
from .kernels import compact_rows

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


class ReadBuffer:
    """Memory reused across reads: a fresh array per run costs a page fault per 4 KB on first touch, as much time
    as copying a cached file. The arrays `read_series` returns from it are valid until its next read."""

    def __init__(self):
        self._array = np.empty(0, dtype=np.float32)

    def take(self, n_values: int) -> np.ndarray:
        if self._array.size < n_values:
            self._array = np.empty(n_values, dtype=np.float32)
        return self._array[:n_values]


MERGE_GAP_BYTES = 1 << 20  # unselected stretches shorter than this are read through: one read beats two seeks


def _read_spans(fd: int, data_offset: int, row_bytes: int, spans: np.ndarray, out: np.ndarray) -> int:
    """Read the rows [start, stop) of every span one after another into `out`; -> bytes read (fewer only when the
    file ends early)."""
    view, filled = memoryview(out).cast("B"), 0
    for start, stop in spans:
        offset, end = data_offset + int(start) * row_bytes, filled + int(stop - start) * row_bytes
        while filled < end:
            n = os.preadv(fd, [view[filled:end]], offset)
            if n == 0:
                return filled
            filled, offset = filled + n, offset + n
    return filled


def read_series(
    path: str | Path, select=None, buffer: ReadBuffer | None = None
) -> tuple[np.ndarray, Grayordinates, np.ndarray]:
    """Read a dense time series: ([volumes, columns] float32, the file's layout, [columns] the grayordinates read).

    `select(layout, path)` -> columns (slice or indices) reads only those: NIfTI stores each grayordinate's series
    contiguously, so only the byte ranges of the selected grayordinates are read (for CC2017's cortex, 65% of the
    file; for a voxel selection, its stretches of the cortex), gaps under MERGE_GAP_BYTES read through. The data
    comes back as the transpose of a [columns, volumes] C-contiguous array (the disk order), read into `buffer`
    where one is given. The NIfTI-2 header is parsed by nibabel; a missing, truncated or non-CIFTI file raises an
    error naming it.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: CIFTI file is missing")
    try:
        with open(path, "rb", buffering=0) as handle:
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
            wanted = np.unique(indices)  # ascending, each once
            dtype = header.get_data_dtype()
            row_bytes = n_volumes * dtype.itemsize
            # Spans of rows to read: split where the unselected gap is long.
            spans = np.empty((0, 2), dtype=np.int64)
            if wanted.size:
                breaks = np.flatnonzero((np.diff(wanted) - 1) * row_bytes > MERGE_GAP_BYTES) + 1
                spans = np.stack([wanted[np.r_[0, breaks]], wanted[np.r_[breaks - 1, wanted.size - 1]] + 1], axis=1)
            n_rows = int((spans[:, 1] - spans[:, 0]).sum())
            data = (
                buffer.take(n_rows * n_volumes)
                if buffer is not None and dtype == np.float32
                else np.empty(n_rows * n_volumes, dtype=dtype)
            )
            n_read = _read_spans(handle.fileno(), int(header["vox_offset"]), row_bytes, spans, data) // dtype.itemsize
    except (OSError, ValueError, EOFError, HeaderDataError, ElementTree.ParseError) as error:
        raise ValueError(f"{path}: not a readable CIFTI-2 dense time series ({error})") from error
    if n_read != data.size:
        raise ValueError(f"{path}: truncated: {n_read} of {data.size} values present")
    block = data.reshape(n_rows, n_volumes)  # NIfTI stores the first axis fastest: time runs along a row
    if n_rows != wanted.size:  # drop the rows of the gaps read through, in place (rows ascending)
        span_rows = np.cumsum(np.r_[0, spans[:-1, 1] - spans[:-1, 0]])
        span_of = np.searchsorted(spans[:, 0], wanted, side="right") - 1
        compact_rows(block, wanted - spans[span_of, 0] + span_rows[span_of])
        block = block[: wanted.size]
    if not np.array_equal(wanted, indices):  # unsorted or repeated columns
        block = block[np.searchsorted(wanted, indices)]
    slope, inter = header.get_slope_inter()
    if slope is not None and (slope != 1 or inter):
        block = block * slope + inter
    return block.astype(np.float32, copy=False).T, layout, indices


def cortex_columns(layout: Grayordinates, source: str | Path, expected: int | None = None) -> np.ndarray | slice:
    """Columns of the cortical surface vertices of both hemispheres (59,412 in CC2017 files), count checked."""
    columns = layout.columns(CORTEX_STRUCTURES, source)
    count = len(range(layout.count)[columns]) if isinstance(columns, slice) else len(columns)
    if expected is not None and count != expected:
        raise ValueError(f"{source}: {count} cortical surface vertices, expected {expected}")
    return columns
