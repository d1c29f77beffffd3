"""The demo world: raw CC2017 layout, file formats, captions, encoding model statistics, determinism."""

import csv
import json

import h5py
import nibabel as nib
import numpy as np
import pytest
from nibabel.cifti2 import BrainModelAxis, SeriesAxis

from semvideo_core.data import cc2017_layout as layout
from semvideo_core.data.preprocess import PreprocessConfig
from semvideo_core.data.video import read_mp4
from semvideo_core.world.captions import BASIC_MAX_WORDS, LEVELS
from semvideo_core.world.config import WorldConfig
from semvideo_core.world.generate import generate_world
from semvideo_core.world.layout import CAPTION_FILES, n_volumes, world_runs
from semvideo_core.world.responses import noise_free_responses

from .conftest import default_world_settings


def load_series(path):
    image = nib.load(path)
    return image.get_fdata(dtype=np.float32), image


def movie_rows(config, run):
    return slice(run.leading_volumes, run.leading_volumes + config.clips_per_segment)


def test_cifti_files_load_with_expected_axes_and_volume_counts(tiny_world):
    config, files, out = tiny_world
    counts = []
    for subject in range(1, config.n_subjects + 1):
        for run in world_runs(config):
            for rep in range(1, (config.train_repeats if run.split == "train" else config.test_repeats) + 1):
                path = layout.cifti_path(out, subject, run, rep)
                data, image = load_series(path)
                series, models = image.header.get_axis(0), image.header.get_axis(1)
                assert isinstance(series, SeriesAxis) and isinstance(models, BrainModelAxis)
                assert series.step == config.tr and series.unit == "SECOND"
                # CC2017 convention: 1 (or 2 for test2+) leading and 4 trailing volumes around the movie.
                expected = (
                    (2 if run.name not in ("test1",) and run.split == "test" else 1) + config.clips_per_segment + 4
                )
                assert data.shape[0] == series.size == expected == n_volumes(config, run)
                structures = [name for name, _, _ in models.iter_structures()]
                assert structures[:2] == ["CIFTI_STRUCTURE_CORTEX_LEFT", "CIFTI_STRUCTURE_CORTEX_RIGHT"]
                assert models.surface_mask.sum() == config.cortical_vertices[subject - 1]
                assert models.volume_mask.sum() == config.subcortical_voxels
                assert image.nifti_header.get_intent()[0] == "ConnDenseSeries"
                assert np.isfinite(data).all()
        counts.append(data.shape[1])
    assert len(set(counts)) == config.n_subjects, "each subject has its own grayordinate count"


def test_mp4_files_decode_with_expected_frames_and_rate(tiny_world):
    config, files, out = tiny_world
    for run, path in zip(world_runs(config), files.stimuli):
        assert path == layout.stimulus_path(out, run)
        frames, fps = read_mp4(path)
        assert fps == config.fps
        assert frames.shape == (
            config.clips_per_segment * config.frames_per_clip,
            config.frame_size,
            config.frame_size,
            3,
        )
        assert frames.std() > 10, "the movie shows something"


def read_captions(path):
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_one_caption_row_per_clip_per_level(tiny_world):
    config, files, out = tiny_world
    expected_ids = [layout.clip_id(run, j) for run in world_runs(config) for j in range(config.clips_per_segment)]
    with h5py.File(files.ground_truth) as h5:
        truth_ids = [s.decode() for s in h5["clips/clip_id"][:]]
        shots = [json.loads(s) for s in h5["clips/scene_params"][:]]
    assert truth_ids == expected_ids
    assert set(files.captions) == set(LEVELS) and set(CAPTION_FILES) == set(LEVELS)
    for level, path in files.captions.items():
        rows = read_captions(path)
        assert [r["clip_id"] for r in rows] == expected_ids, level
        assert all(r["description"].strip() for r in rows)
    basic = read_captions(files.captions["basic"])
    assert max(len(r["description"].split()) for r in basic) <= BASIC_MAX_WORDS
    # The anchor caption names every object of the clip's first shot.
    for row, clip_shots in zip(read_captions(files.captions["anchor"]), shots):
        for obj in clip_shots[0]["objects"]:
            assert f"{obj['colour']} {obj['shape']}" in row["description"]
    # A scene cut inside a clip shows up in its motion caption.
    for row, clip_shots in zip(read_captions(files.captions["motion"]), shots):
        assert ("cuts to" in row["description"]) == (len(clip_shots) > 1)


def _split_half_stats(config, out, subject, visual, detrend_order=None):
    """Per segment and vertex: signal covariance and noise variance from the two presentations."""
    covariances, noise_variances, correlations = [], [], []
    for run in world_runs(config):
        if run.split != "train":
            continue
        first, _ = load_series(layout.cifti_path(out, subject, run, 1))
        second, _ = load_series(layout.cifti_path(out, subject, run, 2))
        a, b = first[movie_rows(config, run)], second[movie_rows(config, run)]
        if detrend_order is not None:  # numpy polynomial fit as the detrending oracle
            x = np.linspace(-1, 1, len(a))
            basis = np.polynomial.polynomial.polyvander(x, detrend_order)
            a = a - basis @ np.linalg.lstsq(basis, a, rcond=None)[0]
            b = b - basis @ np.linalg.lstsq(basis, b, rcond=None)[0]
        a, b = a - a.mean(axis=0), b - b.mean(axis=0)
        covariances.append((a * b).mean(axis=0))
        noise_variances.append(((a - b) ** 2).mean(axis=0) / 2)
        correlations.append((a * b).mean(axis=0) / (a.std(axis=0) * b.std(axis=0)))
    return np.array(covariances), np.array(noise_variances), np.array(correlations)


@pytest.mark.parametrize("snr", [0.5, 2.0])
def test_measured_snr_matches_configured(tmp_path, snr):
    settings = {
        **default_world_settings(),
        "cortical_vertices": [2000],
        "train_segments": 6,
        "test_segments": 1,
        "test_repeats": 1,
        "frame_size": 32,
        "snr": snr,
    }
    config = WorldConfig.from_dict(settings)
    files = generate_world(config, tmp_path, workers=2)
    with h5py.File(files.ground_truth) as h5:
        visual = h5["subject1/visual_mask"][:]
        baseline = h5["subject1/baseline"][:]
        signals = {run.name: h5[f"subject1/signal/{run.name}"][:] for run in world_runs(config)}
    assert visual.mean() <= 0.5

    # From the data alone: the two presentations share the signal and nothing else.
    covariances, noise_variances, _ = _split_half_stats(config, tmp_path, 1, visual)
    measured = covariances[:, visual].mean() / noise_variances[:, visual].mean()
    assert measured == pytest.approx(snr, rel=0.1)

    # Against the ground truth: noise = data - baseline - noise-free response.
    signal_var, noise_var = [], []
    for run in world_runs(config):
        rows = movie_rows(config, run)
        data, _ = load_series(layout.cifti_path(tmp_path, 1, run, 1))
        noise = data - baseline - signals[run.name]
        signal_var.append(signals[run.name][rows][:, visual].var(axis=0))
        noise_var.append(noise[rows][:, visual].var(axis=0))
    assert np.mean(signal_var) / np.mean(noise_var) == pytest.approx(snr, rel=0.1)


def test_default_snr_gives_realistic_split_half_reliability(tmp_path):
    """Median correlation of two presentations in visual vertices is 0.2-0.5 after detrending, as in 3T movie fMRI."""
    settings = {
        **default_world_settings(),
        "cortical_vertices": [1500, 1700],
        "train_segments": 4,
        "test_segments": 1,
        "test_repeats": 1,
        "frame_size": 32,
    }
    config = WorldConfig.from_dict(settings)
    files = generate_world(config, tmp_path, workers=2)
    for subject in (1, 2):
        with h5py.File(files.ground_truth) as h5:
            visual = h5[f"subject{subject}/visual_mask"][:]
            assert not h5[f"subject{subject}/signal/seg1"][:][:, ~visual].any(), "non-visual columns carry no signal"
        _, _, correlations = _split_half_stats(config, tmp_path, subject, visual, detrend_order=4)
        reliability = np.tanh(np.arctanh(correlations).mean(axis=0))
        assert 0.2 <= np.median(reliability[visual]) <= 0.5
        assert abs(np.median(reliability[~visual])) < 0.03
        assert (~visual).mean() >= 0.5, "at least half of the grayordinates carry noise only"


def test_same_seed_gives_byte_identical_files_for_any_worker_count(tmp_path, tiny_world):
    """The session world was made with 2 workers; two more runs with 1 and one more with 2 must give the same bytes
    for every file, videos included (PyAV's implicit RGB->YUV conversion once made mp4s differ run to run)."""
    config, files, out = tiny_world
    relative = [path.relative_to(out) for path in files.all()]
    for run, workers in enumerate((1, 1, 2)):
        again = tmp_path / f"run{run}"
        generate_world(config, again, workers=workers)
        for name in relative:
            assert (again / name).read_bytes() == (out / name).read_bytes(), (
                f"{name} differs (run {run}, {workers} workers)"
            )


def test_another_seed_gives_another_world(tmp_path, tiny_world):
    config, files, _ = tiny_world
    other = generate_world(WorldConfig.from_dict({**config.to_dict(), "seed": config.seed + 1}), tmp_path / "other")
    assert not np.array_equal(read_mp4(files.stimuli[0])[0], read_mp4(other.stimuli[0])[0])
    assert not np.array_equal(load_series(files.cifti[0])[0], load_series(other.cifti[0])[0])


def test_no_partial_files_left_behind(tiny_world):
    _, files, out = tiny_world
    written = {p for p in out.rglob("*") if p.is_file()}
    assert written == set(files.all())


def test_world_config_rejects_unknown_and_inconsistent_keys():
    with pytest.raises(ValueError, match="snrr"):
        WorldConfig.from_dict({"snrr": 1.0})
    with pytest.raises(ValueError, match="drift_fraction"):
        WorldConfig.from_dict({"noise": {"drift_fraction": 0.6, "ar1_fraction": 0.6}})
    with pytest.raises(ValueError, match="feature_grid"):
        WorldConfig.from_dict({"frame_size": 30, "feature_grid": 4})


def test_noise_free_responses_pair_clips_with_volumes_by_the_trimming_rule(tmp_path):
    """Every volume of the signal encodes its own index, so the pairing can be read back: a run of 45 volumes drops
    1 + 4 around the movie and a lag of 2 pairs clip k (1-based) with volume 2 + k; the 40 kept volumes 3..42 are
    z-scored per movie (mean 22.5, std sqrt((40**2 - 1) / 12))."""
    volumes = np.arange(45, dtype=np.float64)
    with h5py.File(tmp_path / "truth.h5", "w") as handle:
        handle["signal/seg1"] = np.stack([volumes, -volumes, volumes**2], axis=1)  # three voxels
        handle["signal/seg2"] = np.stack([volumes, -volumes, volumes**2], axis=1) + 5
        with_lag = PreprocessConfig(trim={45: (1, 4)}, lag_trs=2)
        got = noise_free_responses(handle, with_lag, [1, 0], ["seg1_1", "seg1_40", "seg2_17"])
    std = np.sqrt((40**2 - 1) / 12)
    expected_first = (np.array([3, 42, 19]) - 22.5) / std  # volumes 3, 42 and 2 + 17
    np.testing.assert_allclose(got[:, 1], expected_first, rtol=1e-6)
    np.testing.assert_allclose(got[:, 0], -expected_first, rtol=1e-6)  # the columns chosen, in their order
