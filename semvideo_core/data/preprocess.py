"""fMRI preprocessing per subject, following Wen et al. 2018 as the peer projects re-implement it.

For every run (one presentation of one movie):
1. read the grayordinates of interest (cortical surface vertices for CC2017, a visual ROI for HCP);
2. cut the window that pairs with the movie clips: the trimming rule gives the volumes to drop before and after
   the movie from the run's volume count, and a hemodynamic lag of L TRs pairs clip j with volume j + L of it;
3. remove a polynomial trend (order 4) and z-score every vertex within the run.

Voxel selection (reproducibility): per training movie, correlate the two presentations vertex by vertex, Fisher z,
one-sample t-test of the z values across movies, Bonferroni correction; keep vertices with mean z > 0 and corrected
p below alpha, or the top K by p. Vertices that are constant in any run cannot be correlated: they are excluded
from selection and logged.

Test presentations are averaged (minus a per-subject exclusion list); training presentations are kept apart or
averaged. Two passes over the files, each holding at most three runs in memory (the runs in use and the next one,
read ahead): the first computes the selection from the training runs, the second writes the selected vertices.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import h5py
import numba
import numpy as np
from scipy import stats
from tqdm import tqdm

from ..io.atomic import atomic_output
from ..io.clip_ids import clip_id
from .cc2017_layout import RunFiles, kept_volumes
from .cifti import Grayordinates, ReadBuffer, read_series
from .kernels import detrend_zscore_rows, split_half_rows, trend_basis

log = logging.getLogger(__name__)

SELECTION_METHODS = ("bonferroni", "top_k")
TRAIN_REPEAT_MODES = ("separate", "average")


@dataclass(frozen=True)
class PreprocessConfig:
    trim: dict[int, tuple[int, int]]  # volumes in a run -> (volumes dropped before, after the movie)
    lag_trs: int = 0  # clip j pairs with volume j + lag_trs of the trimmed window
    detrend_order: int = 4
    selection: str = "bonferroni"
    alpha: float = 0.05  # Bonferroni-corrected p threshold
    top_k: int = 4500
    train_repeats: str = "separate"

    def __post_init__(self):
        if self.selection not in SELECTION_METHODS:
            raise ValueError(f"selection must be one of {SELECTION_METHODS}, got {self.selection!r}")
        if self.train_repeats not in TRAIN_REPEAT_MODES:
            raise ValueError(f"train_repeats must be one of {TRAIN_REPEAT_MODES}, got {self.train_repeats!r}")
        kept_volumes(self.trim)

    @property
    def clips_per_run(self) -> int:
        return kept_volumes(self.trim)


def movie_window(n_volumes: int, config: PreprocessConfig, source: str | Path) -> slice:
    """Rows of a run that pair with its movie clips, after trimming and the hemodynamic lag."""
    if n_volumes not in config.trim:
        allowed = ", ".join(f"{n} (drop {a} + {b})" for n, (a, b) in sorted(config.trim.items()))
        raise ValueError(f"{source}: {n_volumes} volumes, but the trimming rule knows runs of {allowed}")
    first, last = config.trim[n_volumes]
    start = first + config.lag_trs
    stop = start + config.clips_per_run
    if stop > n_volumes:
        raise ValueError(
            f"{source}: a lag of {config.lag_trs} TRs needs volumes up to {stop}, but the run has {n_volumes}"
        )
    return slice(start, stop)


def detrend_zscore(
    data: np.ndarray,
    order: int,
    source: str | Path = "data",
    window: slice | None = None,
    out: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Remove a polynomial trend of `order` from every column of data[window], then z-score it (ddof 0).

    data: [T, V] -> ([T_window, V] float32, written into `out` where given; [V] bool constant); float64 arithmetic
    in one fused sweep per vertex (kernels.detrend_zscore_rows). Constant columns come back as zeros; NaN or
    infinite values raise, naming `source`.
    """
    start, stop, _ = (window or slice(None)).indices(len(data))
    rows = np.ascontiguousarray(data.T)  # [V, T]: free for the layout read_series returns
    z = np.empty((stop - start, rows.shape[0]), dtype=np.float32) if out is None else out
    constant, nonfinite = detrend_zscore_rows(rows, start, trend_basis(stop - start, order), z)
    if nonfinite.any():
        raise ValueError(f"{source}: {int(nonfinite.sum())} grayordinates contain NaN or infinite values")
    return z, constant


ColumnSelector = Callable[[Grayordinates, Path], "np.ndarray | slice"]  # a file's layout -> columns to keep


def _read_ahead(paths: list[Path], columns: ColumnSelector, config: PreprocessConfig, keep: int = 1):
    """(path, [volumes, V] data, its movie window, [V] grayordinate columns) for every path in order, the next
    file read in a thread while the caller computes on the current one: disk reads and the numba kernels both
    release the GIL. The caller may hold the last `keep` results; keep + 1 runs are in memory, in reused buffers."""
    buffers = [ReadBuffer() for _ in range(keep + 1)]

    def read(i):
        data, _, kept = read_series(paths[i], columns, buffers[i % len(buffers)])
        return paths[i], data, movie_window(len(data), config, paths[i]), kept

    with ThreadPoolExecutor(max_workers=1) as reader:
        pending = reader.submit(read, 0) if paths else None
        for i in range(len(paths)):
            result = pending.result()
            pending = reader.submit(read, i + 1) if i + 1 < len(paths) else None
            yield result


def split_half_correlation(
    first: np.ndarray,
    second: np.ndarray,
    order: int,
    source: str | Path = "data",
    windows: tuple[slice, slice] | None = None,
):
    """Per column, the correlation of two presentations after removing each one's polynomial trend.

    first, second: [T, V] (rows `windows` of each) -> ([V] r, [V] constant): kernels.split_half_rows, which never
    forms the detrended series. NaN or infinite values raise, naming `source`.
    """
    window_a, window_b = windows or (slice(None), slice(None))
    start_a, stop_a, _ = window_a.indices(len(first))
    start_b, stop_b, _ = window_b.indices(len(second))
    if stop_a - start_a != stop_b - start_b:
        raise ValueError(
            f"{source}: the presentations have windows of {stop_a - start_a} and {stop_b - start_b} volumes"
        )
    rows_a, rows_b = np.ascontiguousarray(first.T), np.ascontiguousarray(second.T)
    basis = trend_basis(stop_a - start_a, order)
    r, constant, nonfinite = split_half_rows(rows_a, rows_b, start_a, start_b, basis)
    if nonfinite.any():
        raise ValueError(f"{source}: {int(nonfinite.sum())} grayordinates contain NaN or infinite values")
    return r, constant


def _movie_reproducibility(first: tuple, second: tuple, order: int):
    """Fisher z of the split-half correlation of one training movie from its two read presentations
    ((path, data, window, columns) each): ([V] z, [V] constant, [V] columns)."""
    (path_first, data_first, window_first, columns_first), (path_second, data_second, window_second, columns_second) = (
        first,
        second,
    )
    if not np.array_equal(columns_first, columns_second):
        raise ValueError(f"{path_second}: its grayordinates differ from those of {path_first}")
    source = f"{path_first} or {path_second}"
    r, constant = split_half_correlation(data_first, data_second, order, source, (window_first, window_second))
    return np.arctanh(np.clip(r, -0.999999, 0.999999)), constant, columns_first


class _SelectedColumns:
    """Column selector of the second pass: the selected candidates, checked against those of the first pass."""

    def __init__(self, columns: ColumnSelector, candidate_index: np.ndarray, mask: np.ndarray):
        self.columns, self.candidate_index, self.mask = columns, candidate_index, mask

    def __call__(self, layout: Grayordinates, path: Path) -> np.ndarray:
        candidates = _as_indices(self.columns(layout, path), layout)
        if not np.array_equal(candidates, self.candidate_index):
            raise ValueError(f"{path}: its grayordinates differ from those of the training runs")
        return candidates[self.mask]


@dataclass
class Selection:
    candidate_index: np.ndarray  # [V] grayordinate columns considered
    mask: np.ndarray  # [V] bool over the candidate columns
    t: np.ndarray  # [V] t statistic of Fisher z across training movies
    p_corrected: np.ndarray  # [V] Bonferroni-corrected two-sided p
    mean_r: np.ndarray  # [V] mean correlation between presentations
    excluded_constant: np.ndarray  # [V] bool


def reproducibility_selection(
    fisher_z: np.ndarray, constant: np.ndarray, candidates: np.ndarray, config: PreprocessConfig
) -> Selection:
    """fisher_z: [movies, V] z of the correlation between two presentations; constant: [V] excluded vertices;
    candidates: [V] their grayordinate columns."""
    tested = ~constant
    t = np.zeros(fisher_z.shape[1])
    p = np.ones(fisher_z.shape[1])
    t[tested], p[tested] = stats.ttest_1samp(fisher_z[:, tested], 0.0, axis=0)
    p_corrected = np.minimum(p * tested.sum(), 1.0)
    positive = tested & (t > 0)
    if config.selection == "bonferroni":
        mask = positive & (p_corrected < config.alpha)
    else:
        order = np.lexsort((-t, p))  # smallest p first, larger t breaks ties
        order = order[positive[order]][: config.top_k]
        mask = np.zeros_like(positive)
        mask[order] = True
    return Selection(candidates, mask, t, p_corrected, np.tanh(fisher_z.mean(axis=0)), constant)


def select_voxels(train_runs: list[RunFiles], columns, config: PreprocessConfig) -> Selection:
    """First pass: reproducibility of the first two presentations of every training movie."""
    for run in train_runs:
        if len(run.paths) < 2:
            raise ValueError(f"{run.name}: voxel selection needs two presentations, found {len(run.paths)}")
    fisher_z, constant, candidates = [], None, None
    presentations = _read_ahead([path for run in train_runs for path in run.paths[:2]], columns, config, keep=2)
    for run in tqdm(train_runs, desc="reproducibility", unit="movie"):
        z, run_constant, run_columns = _movie_reproducibility(
            next(presentations), next(presentations), config.detrend_order
        )
        if candidates is None:
            candidates = run_columns
        elif not np.array_equal(run_columns, candidates):
            raise ValueError(f"{run.paths[0]}: its grayordinates differ from those of {train_runs[0].paths[0]}")
        fisher_z.append(z)
        constant = run_constant if constant is None else constant | run_constant
    if len(fisher_z) < 2:
        raise ValueError(f"voxel selection needs at least two training movies, got {len(fisher_z)}")
    selection = reproducibility_selection(np.stack(fisher_z), constant, candidates, config)
    if constant.any():
        log.warning("%d constant grayordinates excluded from voxel selection", int(constant.sum()))
    log.info("selected %d of %d grayordinates (%s)", int(selection.mask.sum()), len(selection.mask), config.selection)
    if not selection.mask.any():
        raise ValueError("voxel selection kept no grayordinate; check the data or relax preprocess.alpha / use top_k")
    return selection


def _write_behind(h5: h5py.File) -> None:
    """Start writing the output's dirty pages to disk now (POSIX_FADV_DONTNEED starts asynchronous writeback on
    Linux), so that the fsync of atomic_output finds little left to wait for."""
    h5.flush()
    os.posix_fadvise(h5.id.get_vfd_handle(), 0, 0, os.POSIX_FADV_DONTNEED)


def preprocess_subject(
    runs: list[RunFiles],
    columns: ColumnSelector,
    config: PreprocessConfig,
    out_path: str | Path,
    attrs: dict | None = None,
    workers: int = 1,
) -> Selection:
    """Preprocess one subject's runs and write `out_path` (HDF5), with `workers` threads in the per-vertex kernels:

    train [N_train, reps, V] (or [N_train, V] when averaged), test [N_test, V] (presentations averaged),
    train_clip_id, test_clip_id, voxel_index [V] (grayordinate columns of the source files), the selection
    statistics over all candidate columns, and every parameter as attributes.
    """
    missing = [str(p) for run in runs for p in run.paths if not Path(p).exists()]
    if missing:
        raise FileNotFoundError(f"{len(missing)} fMRI runs are missing: {', '.join(missing[:10])}")
    train_runs = [r for r in runs if r.split == "train"]
    test_runs = [r for r in runs if r.split == "test"]
    numba.set_num_threads(max(1, min(workers, numba.config.NUMBA_NUM_THREADS)))
    selection = select_voxels(train_runs, columns, config)
    selected = _SelectedColumns(columns, selection.candidate_index, selection.mask)

    n_clips = config.clips_per_run
    n_reps = min(len(r.paths) for r in train_runs)
    n_voxels = int(selection.mask.sum())
    train_shape = (len(train_runs) * n_clips, n_reps, n_voxels)
    if config.train_repeats == "average":
        train_shape = (train_shape[0], n_voxels)
    with atomic_output(out_path) as tmp, h5py.File(tmp, "w") as h5:
        train = h5.create_dataset("train", shape=train_shape, dtype=np.float32, chunks=(n_clips, *train_shape[1:]))
        # Output buffers are reused from movie to movie: fresh ones would cost a page fault per 4 KB each time.
        reps = np.empty((n_clips, n_reps, n_voxels), dtype=np.float32)
        presentations = _read_ahead([path for run in train_runs for path in run.paths[:n_reps]], selected, config)
        for i, run in enumerate(tqdm(train_runs, desc="train runs", unit="movie")):
            for rep in range(n_reps):
                path, data, window, _ = next(presentations)
                detrend_zscore(data, config.detrend_order, path, window, out=reps[:, rep])
            train[i * n_clips : (i + 1) * n_clips] = reps.mean(axis=1) if config.train_repeats == "average" else reps
            _write_behind(h5)
        test = h5.create_dataset("test", shape=(len(test_runs) * n_clips, n_voxels), dtype=np.float32)
        z, total = np.empty((n_clips, n_voxels), dtype=np.float32), np.empty((n_clips, n_voxels))
        presentations = _read_ahead([path for run in test_runs for path in run.paths], selected, config)
        for i, run in enumerate(tqdm(test_runs, desc="test runs", unit="movie")):
            total[:] = 0.0
            for _ in run.paths:  # presentations are summed as they arrive, never held together
                path, data, window, _ = next(presentations)
                total += detrend_zscore(data, config.detrend_order, path, window, out=z)[0]
            test[i * n_clips : (i + 1) * n_clips] = (total / len(run.paths)).astype(np.float32)
            _write_behind(h5)

        strings = h5py.string_dtype()
        for name, split_runs in (("train_clip_id", train_runs), ("test_clip_id", test_runs)):
            ids = [clip_id(run.name, j) for run in split_runs for j in range(n_clips)]
            h5.create_dataset(name, data=np.array(ids, dtype=object), dtype=strings)
        h5["voxel_index"] = selection.candidate_index[selection.mask].astype(np.int64)
        for key in ("candidate_index", "t", "p_corrected", "mean_r", "excluded_constant"):
            h5[f"selection/{key}"] = getattr(selection, key)
        parameters = asdict(config)
        parameters.pop("top_k" if config.selection == "bonferroni" else "alpha")  # the threshold it did not use
        parameters["trim"] = {str(k): list(v) for k, v in config.trim.items()}
        h5.attrs["preprocessing"] = json.dumps(parameters)
        h5.attrs["runs"] = json.dumps(
            [{"name": r.name, "split": r.split, "reps": list(r.reps), "paths": list(map(str, r.paths))} for r in runs]
        )
        _write_attrs(h5, attrs)
    return selection


def _as_indices(columns: np.ndarray | slice, layout: Grayordinates) -> np.ndarray:
    return np.arange(layout.count)[columns] if isinstance(columns, slice) else columns


def _write_attrs(h5: h5py.File, attrs: dict | None) -> None:
    """Caller's attributes (dataset, subject, ...): scalars as they are, anything else as JSON."""
    for key, value in (attrs or {}).items():
        h5.attrs[key] = value if isinstance(value, (int, float, str)) else json.dumps(value)


def group_runs(paths: list[str | Path], labels: list[tuple[str, str, int]]) -> list[RunFiles]:
    """Rebuild RunFiles from a flat file list and aligned (run name, split, rep) labels, keeping their order."""
    if len(paths) != len(labels):
        raise ValueError(f"{len(paths)} files for {len(labels)} run labels")
    grouped: dict[str, tuple[str, list[int], list[Path]]] = {}
    for path, (name, split, rep) in zip(paths, labels):
        grouped.setdefault(name, (split, [], []))
        grouped[name][1].append(int(rep))
        grouped[name][2].append(Path(path))
    return [RunFiles(name, split, tuple(reps), tuple(files)) for name, (split, reps, files) in grouped.items()]


def preprocess_timed_runs(
    run_paths: dict[str, Path],
    clips: list,
    columns: ColumnSelector,
    out_path: str | Path,
    tr: float,
    clip_seconds: float,
    lag_trs: int,
    test_segment: str,
    detrend_order: int = 4,
    attrs: dict | None = None,
) -> None:
    """Preprocess runs whose clips come from a timing table (HCP 7T movies): one presentation per run.

    Every run is detrended and z-scored as a whole (rest blocks included); clip `window` pairs with the volume at
    its start plus `lag_trs`. The grayordinates are given by `columns` (a region of interest): with one presentation
    per training clip there is no reproducibility to select by. Training clips: train [N, 1, V]; clips of the test
    segment, repeated in several runs, are averaged by clip id: test [N_test, V].
    """
    missing = [str(p) for p in run_paths.values() if not Path(p).exists()]
    if missing:
        raise FileNotFoundError(f"{len(missing)} fMRI runs are missing: {', '.join(missing)}")
    train_rows, train_ids, test_sums, test_counts, roi = [], [], {}, {}, None
    for run, path in tqdm(run_paths.items(), desc="runs", unit="run"):
        data, _, kept = read_series(path, columns)
        if roi is not None and not np.array_equal(kept, roi):
            raise ValueError(f"{path}: its grayordinates differ from those of the first run")
        roi = kept
        z, constant = detrend_zscore(data, detrend_order, path)
        if constant.any():
            log.warning("%s: %d constant grayordinates (kept as zeros)", path, int(constant.sum()))
        for clip in (c for c in clips if c.run == run):
            volume = int(round(clip.window * clip_seconds / tr)) + lag_trs
            if volume >= len(z):
                raise ValueError(f"{path}: clip {clip.clip_id} needs volume {volume}, the run has {len(z)}")
            if clip.segment == test_segment:
                test_sums[clip.clip_id] = test_sums.get(clip.clip_id, 0.0) + z[volume].astype(np.float64)
                test_counts[clip.clip_id] = test_counts.get(clip.clip_id, 0) + 1
            else:
                train_rows.append(z[volume])
                train_ids.append(clip.clip_id)
    if not train_rows or not test_sums:
        raise ValueError("the clip timing gives no training clips or no test clips for these runs")
    test_ids = list(test_sums)
    with atomic_output(out_path) as tmp, h5py.File(tmp, "w") as h5:
        h5["train"] = np.stack(train_rows)[:, None, :]  # [N, 1 presentation, V]
        h5["test"] = np.stack([test_sums[c] / test_counts[c] for c in test_ids]).astype(np.float32)
        strings = h5py.string_dtype()
        h5.create_dataset("train_clip_id", data=np.array(train_ids, dtype=object), dtype=strings)
        h5.create_dataset("test_clip_id", data=np.array(test_ids, dtype=object), dtype=strings)
        h5["test_presentations"] = np.array([test_counts[c] for c in test_ids], dtype=np.int32)
        h5["voxel_index"] = roi.astype(np.int64)
        h5.attrs["preprocessing"] = json.dumps(
            {
                "tr": tr,
                "clip_seconds": clip_seconds,
                "lag_trs": lag_trs,
                "test_segment": test_segment,
                "detrend_order": detrend_order,
                "selection": "roi",
            }
        )
        h5.attrs["runs"] = json.dumps({run: str(path) for run, path in run_paths.items()})
        _write_attrs(h5, attrs)
