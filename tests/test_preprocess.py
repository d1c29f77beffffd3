"""fMRI preprocessing: trimming, detrend/z-score against oracles, voxel selection against the world's ground truth,
structure-based column selection, and the errors bad input gets."""

import logging
from functools import partial

import h5py
import nibabel as nib
import numpy as np
import pytest
from nibabel.cifti2 import BrainModelAxis
from scipy import stats

from semvideo_core.data import cc2017_layout as layout
from semvideo_core.data import cifti
from semvideo_core.data.cc2017_layout import RunFiles, trim_rule
from semvideo_core.data.cifti import (
    MNI_2MM_AFFINE,
    MNI_2MM_SHAPE,
    ReadBuffer,
    cortex_columns,
    read_series,
    write_dtseries,
)
from semvideo_core.data.preprocess import (
    PreprocessConfig,
    detrend_zscore,
    movie_window,
    preprocess_subject,
    split_half_correlation,
)
from semvideo_core.world.config import WorldConfig
from semvideo_core.world.generate import generate_world

from .conftest import default_world_settings

CC2017_TRIM = trim_rule(
    [{"volumes": 245, "drop_first": 1, "drop_last": 4}, {"volumes": 246, "drop_first": 2, "drop_last": 4}]
)


def test_detrend_zscore_matches_numpy_polyfit_and_scipy_zscore():
    rng = np.random.default_rng(0)
    t = np.arange(240)
    data = rng.normal(size=(240, 50)) + 1e-3 * t[:, None] ** 2 + 50 + rng.normal(size=50) * t[:, None] / 10
    ours, constant = detrend_zscore(data.astype(np.float32), order=4)
    assert not constant.any()
    oracle = np.empty_like(data)
    for v in range(data.shape[1]):
        coefficients = np.polyfit(t, data[:, v], 4)
        oracle[:, v] = data[:, v] - np.polyval(coefficients, t)
    oracle = stats.zscore(oracle, axis=0)
    np.testing.assert_allclose(ours, oracle, atol=1e-5)  # float32 input: its rounding limits the agreement


def test_detrend_zscore_in_float64_matches_oracle_to_1e6():
    # From float64 input the result agrees with the oracle to 1e-6 (the output is float32, rounding ~1e-7).
    rng = np.random.default_rng(1)
    data = rng.normal(size=(245, 20)) * 3 + 100
    t = np.arange(245)
    oracle = stats.zscore(data - np.stack([np.polyval(np.polyfit(t, c, 4), t) for c in data.T], axis=1), axis=0)
    x = np.linspace(-1, 1, 245)
    q, _ = np.linalg.qr(np.polynomial.legendre.legvander(x, 4))
    residual = data - q @ (q.T @ data)
    np.testing.assert_allclose(residual / residual.std(axis=0), oracle, atol=1e-6)
    np.testing.assert_allclose(detrend_zscore(data, 4)[0], oracle, atol=2e-6)


@pytest.mark.parametrize("volumes, first_row", [(245, 1), (246, 2)])
def test_trimming_keeps_240_volumes_of_245_and_246(volumes, first_row):
    config = PreprocessConfig(trim=CC2017_TRIM)
    window = movie_window(volumes, config, "run.dtseries.nii")
    assert (window.start, window.stop) == (first_row, first_row + 240)
    lagged = movie_window(volumes, PreprocessConfig(trim=CC2017_TRIM, lag_trs=4), "run.dtseries.nii")
    assert (lagged.start, lagged.stop) == (first_row + 4, first_row + 244)


def test_trimming_rejects_unknown_counts_and_too_large_lags():
    with pytest.raises(ValueError, match=r"odd_run.dtseries.nii: 244 volumes.*245"):
        movie_window(244, PreprocessConfig(trim=CC2017_TRIM), "odd_run.dtseries.nii")
    with pytest.raises(ValueError, match="lag of 5 TRs"):
        movie_window(245, PreprocessConfig(trim=CC2017_TRIM, lag_trs=5), "run.dtseries.nii")
    with pytest.raises(ValueError, match="same number of volumes"):
        PreprocessConfig(trim={245: (1, 4), 246: (1, 4)})


def _brain_models(n_left=30, n_right=30, n_sub=8, cortex_last=False):
    left = BrainModelAxis.from_surface(np.arange(n_left), 40, name="CortexLeft")
    right = BrainModelAxis.from_surface(np.arange(n_right), 40, name="CortexRight")
    mask = np.zeros(MNI_2MM_SHAPE, dtype=bool)
    mask[40:42, 50:52, 30:32] = True
    sub = BrainModelAxis.from_mask(mask, name="thalamus_left", affine=MNI_2MM_AFFINE)
    assert len(sub) == n_sub
    return (sub + right + left) if cortex_last else (left + right + sub)


def test_cortex_columns_by_structure_names_in_any_layout(tmp_path):
    # A layout different from CC2017's: subcortex first, right hemisphere before left.
    models = _brain_models(cortex_last=True)
    path = tmp_path / "odd_layout.dtseries.nii"
    write_dtseries(path, np.arange(5 * len(models), dtype=np.float32).reshape(5, -1), models, tr=2.0)
    data, grayordinates, _ = read_series(path)
    np.testing.assert_array_equal(data, nib.load(path).get_fdata(dtype=np.float32))  # nibabel as the oracle
    columns = cortex_columns(grayordinates, path, expected=60)
    np.testing.assert_array_equal(np.arange(len(models))[columns], np.arange(8, 68))
    with pytest.raises(ValueError, match="60 cortical surface vertices, expected 59412"):
        cortex_columns(grayordinates, path, expected=59412)
    only_volume = BrainModelAxis.from_mask(np.ones((2, 2, 2), bool), name="thalamus_left", affine=np.eye(4))
    write_dtseries(tmp_path / "volume_only.dtseries.nii", np.zeros((3, 8)), only_volume, tr=2.0)
    with pytest.raises(ValueError, match="CORTEX_LEFT"):
        cortex_columns(read_series(tmp_path / "volume_only.dtseries.nii")[1], "volume_only.dtseries.nii")
    # non-contiguous cortex (left, subcortex, right) comes back as explicit columns
    left, right = models[8:38], models[38:68]
    split = left + models[:8] + right
    write_dtseries(tmp_path / "split.dtseries.nii", np.zeros((3, len(split))), split, tr=2.0)
    columns = cortex_columns(read_series(tmp_path / "split.dtseries.nii")[1], "split.dtseries.nii")
    np.testing.assert_array_equal(columns, np.r_[0:30, 38:68])


@pytest.mark.parametrize("merge_gap", [0, 1 << 20])
def test_reads_into_a_reused_buffer_match_nibabel(tmp_path, monkeypatch, merge_gap):
    # The buffer is reused across files and selections; sparse columns are read as separate spans (gap 0) or
    # read through and compacted in place; unsorted and repeated columns come back in the order asked.
    monkeypatch.setattr(cifti, "MERGE_GAP_BYTES", merge_gap)
    models = _brain_models()
    rng = np.random.default_rng(3)
    buffer = ReadBuffer()
    selections = [slice(0, 60), np.array([0, 1, 5, 6, 7, 30, 59, 60, 67]), np.array([2, 3, 4]), np.array([9, 2, 9])]
    for i, columns in enumerate(selections):
        path = tmp_path / f"run{i}.dtseries.nii"
        write_dtseries(path, rng.normal(size=(6 + i, len(models))), models, tr=2.0)
        data, _, read = read_series(path, lambda layout, source, c=columns: c, buffer)
        expected = nib.load(path).get_fdata(dtype=np.float32)[:, columns]
        np.testing.assert_array_equal(read, np.arange(len(models))[columns])
        np.testing.assert_array_equal(data, expected)


def _write_subject(tmp_path, n_train=3, n_test=1, test_reps=2, volumes=12, keep=7, seed=0):
    """Runs whose rows carry their volume index, plus noise, so trimming can be checked on the output."""
    rng = np.random.default_rng(seed)
    models = _brain_models()
    signal = rng.normal(size=(keep, len(models)))
    runs = []
    for run in layout.runs(n_train, n_test):
        n_reps = 2 if run.split == "train" else test_reps
        paths = []
        for rep in range(1, n_reps + 1):
            data = rng.normal(size=(volumes, len(models))) * 0.3
            data[1 : 1 + keep, :40] += signal[:, :40]  # the first 40 columns respond to the movie
            path = layout.cifti_path(tmp_path / "raw", 1, run, rep)
            write_dtseries(path, data + 100, models, tr=2.0)
            paths.append(path)
        runs.append(RunFiles(run.name, run.split, tuple(range(1, n_reps + 1)), tuple(paths)))
    config = PreprocessConfig(trim={volumes: (1, volumes - 1 - keep)}, detrend_order=1, selection="top_k", top_k=40)
    return runs, config


def test_preprocess_subject_writes_the_design_layout(tmp_path):
    runs, config = _write_subject(tmp_path)
    out = tmp_path / "subject1.h5"
    preprocess_subject(runs, partial(cortex_columns, expected=60), config, out, attrs={"subject": "subject1"})
    with h5py.File(out) as h5:
        assert h5["train"].shape == (3 * 7, 2, 40) and h5["test"].shape == (7, 40)
        assert h5["train"].dtype == np.float32
        assert [s.decode() for s in h5["train_clip_id"][:3]] == ["seg1_1", "seg1_2", "seg1_3"]
        assert len(h5["test_clip_id"]) == 7
        np.testing.assert_array_equal(np.sort(h5["voxel_index"][:]), np.arange(40))
        assert '"detrend_order": 1' in h5.attrs["preprocessing"] and h5.attrs["subject"] == "subject1"
        # z-scored within each run: every presentation has zero mean and unit variance per vertex
        np.testing.assert_allclose(h5["train"][:7, 0].mean(axis=0), 0, atol=1e-5)
        np.testing.assert_allclose(h5["train"][:7, 0].std(axis=0), 1, atol=1e-4)


def test_test_presentations_are_averaged_without_the_excluded_one(tmp_path):
    runs, config = _write_subject(tmp_path, test_reps=3)
    out_all, out_excluded = tmp_path / "all.h5", tmp_path / "excluded.h5"
    columns = partial(cortex_columns, expected=60)
    preprocess_subject(runs, columns, config, out_all)
    test = runs[-1]
    kept = RunFiles(test.name, test.split, test.reps[:2], test.paths[:2])
    preprocess_subject([*runs[:-1], kept], columns, config, out_excluded)
    with h5py.File(out_all) as a, h5py.File(out_excluded) as b:
        assert not np.allclose(a["test"][:], b["test"][:])
    # the layout helper drops excluded presentations before anything is read
    subject_runs = layout.subject_runs(tmp_path / "raw", 3, 18, 5, 2, 10, exclude=[("test2", 9)])
    test2 = next(r for r in subject_runs if r.name == "test2")
    assert test2.reps == (1, 2, 3, 4, 5, 6, 7, 8, 10) and len(test2.paths) == 9


def _corrupt_and_expect(tmp_path, damage, message):
    runs, config = _write_subject(tmp_path)
    damage(runs)
    out = tmp_path / "out" / "subject1.h5"
    with pytest.raises((ValueError, FileNotFoundError), match=message):
        preprocess_subject(runs, partial(cortex_columns, expected=60), config, out)
    assert not out.parent.exists() or list(out.parent.iterdir()) == []


def test_truncated_cifti_names_the_file(tmp_path):
    def truncate(runs):
        path = runs[1].paths[0]
        path.write_bytes(path.read_bytes()[:-500])

    _corrupt_and_expect(tmp_path, truncate, r"seg2_1_Atlas.dtseries.nii: .*(truncated|corrupt|readable)")


def test_garbage_file_names_the_file(tmp_path):
    _corrupt_and_expect(
        tmp_path, lambda runs: runs[0].paths[1].write_bytes(b"not a nifti" * 100), "seg1_2_Atlas.dtseries.nii"
    )


def test_unexpected_volume_count_names_the_file(tmp_path):
    def shorten(runs):
        path = runs[2].paths[1]
        image = nib.load(path)
        write_dtseries(path, image.get_fdata()[:-1], image.header.get_axis(1), tr=2.0)

    _corrupt_and_expect(tmp_path, shorten, r"seg3_2_Atlas.dtseries.nii: 11 volumes")


def test_nan_vertices_name_the_file(tmp_path):
    def poison(runs):
        path = runs[3].paths[0]
        image = nib.load(path)
        data = image.get_fdata()
        data[3, 5] = np.nan
        write_dtseries(path, data, image.header.get_axis(1), tr=2.0)

    _corrupt_and_expect(tmp_path, poison, r"test1_1_Atlas.dtseries.nii: 1 grayordinates contain NaN")


def test_missing_run_is_named(tmp_path):
    _corrupt_and_expect(tmp_path, lambda runs: runs[1].paths[1].unlink(), r"missing: .*seg2_2_Atlas.dtseries.nii")


def test_constant_vertices_are_excluded_and_logged(tmp_path, caplog):
    runs, config = _write_subject(tmp_path)
    path = runs[0].paths[0]
    image = nib.load(path)
    data = image.get_fdata()
    data[:, 3] = 7.0  # a responsive vertex that went flat in one run
    write_dtseries(path, data, image.header.get_axis(1), tr=2.0)
    out = tmp_path / "subject1.h5"
    with caplog.at_level(logging.WARNING):
        selection = preprocess_subject(runs, partial(cortex_columns, expected=60), config, out)
    assert selection.excluded_constant[3] and not selection.mask[3]
    assert "1 constant grayordinates excluded" in caplog.text


@pytest.fixture(scope="module")
def default_snr_world(tmp_path_factory):
    """The default world's runs, noise and sizes for one subject (smaller frames and cortex to stay fast)."""
    settings = {**default_world_settings(), "cortical_vertices": [2400], "frame_size": 32, "test_repeats": 2}
    config = WorldConfig.from_dict(settings)
    out = tmp_path_factory.mktemp("default_snr_world")
    generate_world(config, out, workers=2)
    return config, out


def test_selection_recovers_the_true_visual_vertices(default_snr_world, tmp_path):
    world, raw = default_snr_world
    runs = layout.subject_runs(
        raw, 1, world.train_segments, world.test_segments, world.train_repeats, world.test_repeats
    )
    kept = world.clips_per_segment
    config = PreprocessConfig(trim={kept + 5: (1, 4), kept + 6: (2, 4)}, lag_trs=2)  # defaults: Bonferroni p < 0.05
    out = tmp_path / "subject1.h5"
    preprocess_subject(runs, partial(cortex_columns, expected=2400), config, out)
    with h5py.File(raw / "ground_truth.h5") as truth, h5py.File(out) as h5:
        visual = set(np.flatnonzero(truth["subject1/visual_mask"][:]))
        selected = set(h5["voxel_index"][:])
        assert h5["train"].shape == (world.train_segments * kept, 2, len(selected))
    precision = len(selected & visual) / len(selected)
    recall = len(selected & visual) / len(visual)
    print(f"voxel selection on the default-SNR world: precision {precision:.3f}, recall {recall:.3f}")
    assert precision >= 0.9 and recall >= 0.9


def test_split_half_correlation_matches_the_correlation_of_detrended_series():
    rng = np.random.default_rng(3)
    t = np.arange(240)[:, None]
    shared = rng.normal(size=(240, 30))
    first = (shared + rng.normal(size=(240, 30)) + 1e-4 * t**2 + 10000).astype(np.float32)
    second = (shared + rng.normal(size=(240, 30)) - 0.02 * t + 9000).astype(np.float32)
    first[:, 7] = 5.0  # flat in one presentation
    r, constant = split_half_correlation(first, second, 4)

    def detrended(x):  # oracle: numpy polyfit per column
        x = x.astype(np.float64)
        return np.stack([c - np.polyval(np.polyfit(t[:, 0], c, 4), t[:, 0]) for c in x.T], axis=1)

    a, b = detrended(first), detrended(second)
    expected = np.array([np.corrcoef(a[:, v], b[:, v])[0, 1] for v in range(30) if v != 7])
    np.testing.assert_allclose(np.delete(r, 7), expected, atol=1e-5)
    assert constant[7] and r[7] == 0 and constant.sum() == 1


def test_worker_processes_give_the_same_output(tmp_path):
    runs, config = _write_subject(tmp_path)
    columns = partial(cortex_columns, expected=60)
    preprocess_subject(runs, columns, config, tmp_path / "one.h5", workers=1)
    preprocess_subject(runs, columns, config, tmp_path / "two.h5", workers=2)
    with h5py.File(tmp_path / "one.h5") as one, h5py.File(tmp_path / "two.h5") as two:
        for key in ("train", "test", "voxel_index", "selection/t"):
            np.testing.assert_array_equal(one[key][:], two[key][:])
