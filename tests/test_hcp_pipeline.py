"""HCP 7T movie path: clip timing, preprocessing of timed runs, the raw-data checkpoint, and the workflow on a
synthetic HCP-like subject (91,282 grayordinates, 1-s TR, 24-fps movies)."""

import io
import json
import subprocess
import sys

import h5py
import numpy as np
import pytest
import yaml
from botocore.response import StreamingBody
from nibabel.cifti2 import BrainModelAxis

from semvideo_core.data.cifti import MNI_2MM_AFFINE, MNI_2MM_SHAPE, write_dtseries
from semvideo_core.data.hcp import (
    clip_windows,
    ensure_hcp_raw,
    read_clip_times,
    timed_clips,
    visual_roi_columns,
)
from semvideo_core.data.hcp_layout import HCP_MOVIE_RUNS, hcp_movie_keys
from semvideo_core.data.preprocess import preprocess_timed_runs
from semvideo_core.data.video import Mp4Writer
from semvideo_core.io.captions import read_captions

from .conftest import REPO, job_blocks
from .openai_server import FakeVLLM

CLIP_TIMES = "run,segment,start_s,end_s\nMOVIE1,segA,10.5,30\nMOVIE1,testretest,50,60\nMOVIE2,segB,5,25\nMOVIE2,testretest,50,60\n"


def test_clip_timing_gives_whole_one_second_windows(tmp_path):
    path = tmp_path / "clip_times.csv"
    path.write_text(CLIP_TIMES)
    clips = timed_clips(read_clip_times(path), "testretest")
    seg_a = [c for c in clips if c.segment == "segA"]
    assert [c.window for c in seg_a] == list(range(11, 30))  # [10.5, 30) holds the whole seconds 11..29
    assert seg_a[0].clip_id == "MOVIE1_segA_1"
    test = [c for c in clips if c.segment == "testretest"]
    assert len(test) == 20 and {c.clip_id for c in test} == {f"testretest_{k}" for k in range(1, 11)}
    windows = clip_windows(clips, "test", "testretest")
    assert list(windows) == ["MOVIE1"] and len(windows["MOVIE1"]) == 10  # cut once, from the first run
    assert set(clip_windows(clips, "train", "testretest")) == {"MOVIE1", "MOVIE2"}


@pytest.mark.parametrize(
    "content, message",
    [("run,segment,start\nMOVIE1,a,1\n", "needs columns"), ("run,segment,start_s,end_s\nMOVIE1,a,5,2\n", "line 2")],
)
def test_malformed_clip_timing_names_the_file(tmp_path, content, message):
    path = tmp_path / "clip_times.csv"
    path.write_text(content)
    with pytest.raises(ValueError, match=message):
        read_clip_times(path)


def _small_models():
    return BrainModelAxis.from_surface(np.arange(30), 40, name="CortexLeft") + BrainModelAxis.from_surface(
        np.arange(30), 40, name="CortexRight"
    )


def test_timed_runs_pair_each_clip_with_its_lagged_volume_and_average_the_test(tmp_path):
    rng = np.random.default_rng(0)
    models = _small_models()
    paths = {}
    for run in ("MOVIE1", "MOVIE2"):
        data = rng.normal(size=(70, len(models))) + 1000
        paths[run] = tmp_path / f"{run}.dtseries.nii"
        write_dtseries(paths[run], data, models, tr=1.0)
    times = tmp_path / "clip_times.csv"
    times.write_text(CLIP_TIMES)
    clips = timed_clips(read_clip_times(times), "testretest")
    out = tmp_path / "subject.h5"
    preprocess_timed_runs(paths, clips, lambda layout, path: slice(0, 60), out, 1.0, 1.0, 4, "testretest", 2)

    # oracle: the same detrend and z-score per run with numpy, then the rows at window + lag
    def zscored(path):
        import nibabel as nib

        data = nib.load(path).get_fdata()
        t = np.arange(len(data))
        residual = data - np.stack([np.polyval(np.polyfit(t, c, 2), t) for c in data.T], axis=1)
        return (residual - residual.mean(0)) / residual.std(0)

    z1, z2 = zscored(paths["MOVIE1"]), zscored(paths["MOVIE2"])
    with h5py.File(out) as h5:
        assert h5["train"].shape == (19 + 20, 1, 60) and h5["test"].shape == (10, 60)
        np.testing.assert_allclose(h5["train"][0, 0], z1[11 + 4], atol=1e-5)  # MOVIE1_segA_1: second 11, lag 4
        np.testing.assert_allclose(h5["train"][19, 0], z2[5 + 4], atol=1e-5)  # MOVIE2_segB_1
        np.testing.assert_allclose(h5["test"][0], (z1[54] + z2[54]) / 2, atol=1e-5)
        assert list(h5["test_presentations"][:]) == [2] * 10
        assert json.loads(h5.attrs["preprocessing"])["lag_trs"] == 4

    short = {"MOVIE1": paths["MOVIE1"]}
    late = tmp_path / "late.csv"
    late.write_text("run,segment,start_s,end_s\nMOVIE1,segA,60,68\nMOVIE1,testretest,10,20\n")
    with pytest.raises(ValueError, match="MOVIE1.dtseries.nii: clip MOVIE1_segA_7 needs volume 70"):
        preprocess_timed_runs(
            short,
            timed_clips(read_clip_times(late), "testretest"),
            lambda l, p: slice(0, 60),
            tmp_path / "late.h5",
            1.0,
            1.0,
            4,
            "testretest",
        )
    assert not (tmp_path / "late.h5").exists()


def test_hcp_raw_checks_support_files_and_skips_s3_when_runs_are_present(tmp_path):
    runs = HCP_MOVIE_RUNS[:1]
    with pytest.raises(FileNotFoundError, match="stimuli/7T_MOVIE1_CC1_v2.mp4"):
        ensure_hcp_raw(tmp_path, ["100610"], runs, ["stimuli/7T_MOVIE1_CC1_v2.mp4"], tmp_path / "m.sha256")
    (tmp_path / "stimuli").mkdir()
    (tmp_path / "stimuli" / "7T_MOVIE1_CC1_v2.mp4").write_bytes(b"movie")
    run_file = tmp_path / hcp_movie_keys("100610", runs)[0]
    run_file.parent.mkdir(parents=True)
    run_file.write_bytes(b"run")
    ensure_hcp_raw(tmp_path, ["100610"], runs, ["stimuli/7T_MOVIE1_CC1_v2.mp4"], tmp_path / "m.sha256", client=object())
    assert len((tmp_path / "m.sha256").read_text().splitlines()) == 2


def _hcp_91k_models():
    rng = np.random.default_rng(0)
    left = BrainModelAxis.from_surface(np.sort(rng.choice(32492, 29696, replace=False)), 32492, name="CortexLeft")
    right = BrainModelAxis.from_surface(np.sort(rng.choice(32492, 29716, replace=False)), 32492, name="CortexRight")
    mask = np.zeros(MNI_2MM_SHAPE, dtype=bool)
    mask.flat[np.sort(rng.choice(mask.size, 31870, replace=False))] = True
    return left + right + BrainModelAxis.from_mask(mask, name="thalamus_left", affine=MNI_2MM_AFFINE)


def test_hcp_workflow_on_a_synthetic_subject(tmp_path):
    raw = tmp_path / "hcp_raw"
    runs = HCP_MOVIE_RUNS[:2]
    models = _hcp_91k_models()
    rng = np.random.default_rng(1)
    for key in hcp_movie_keys("100610", runs):
        write_dtseries(raw / key, rng.normal(size=(70, len(models))).astype(np.float32) + 1000, models, tr=1.0)
    movies = {"MOVIE1": "7T_MOVIE1_CC1_v2.mp4", "MOVIE2": "7T_MOVIE2_HO1_v2.mp4"}
    for name in movies.values():
        with Mp4Writer(raw / "stimuli" / name, fps=24, size=(48, 32)) as writer:
            writer.write(rng.integers(0, 255, size=(70 * 24, 32, 48, 3), dtype=np.uint8))
    (raw / "stimuli" / "clip_times.csv").write_text(CLIP_TIMES)
    config = tmp_path / "hcp.yaml"
    with FakeVLLM("hcp-vl") as server:  # HCP has no released captions: SemMiner captions its 1-s clips
        config.write_text(
            yaml.safe_dump(
                {
                    "datasets": ["hcp"],
                    "hcp": {
                        "raw_dir": str(raw),
                        "subjects": ["100610"],
                        "runs": [{"run": r, "direction": d, "movie": movies[r]} for r, d in runs],
                    },
                    "clips": {"size": 32},
                    "captions": {
                        "source": "semminer",
                        "semminer": {
                            "model": "hcp-vl",
                            "server": {"base_url": server.base_url},
                            "frames": {"size": 32},
                        },
                    },
                }
            )
        )
        command = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "-d", str(tmp_path)]
        targets = ["data/hcp/fmri/100610.h5", "data/hcp/clips/train.h5", "data/hcp/clips/test.h5"]
        targets += [f"data/hcp/captions/{level}.csv" for level in ("basic", "anchor", "motion", "holistic")]
        result = subprocess.run(
            [*command, "--configfile", str(config), "--cores", "2", *targets], capture_output=True, text=True
        )
    assert result.returncode == 0, result.stdout + result.stderr
    motion = read_captions(tmp_path / "data" / "hcp" / "captions" / "motion.csv")
    assert len(motion) == 39 + 10 and next(iter(motion)) == "MOVIE1_segA_1"
    roi = visual_roi_columns(91282)
    with h5py.File(tmp_path / "data" / "hcp" / "fmri" / "100610.h5") as h5:
        assert h5["train"].shape == (39, 1, len(roi)) and h5["test"].shape == (10, len(roi))
        np.testing.assert_array_equal(h5["voxel_index"][:], roi)
    with h5py.File(tmp_path / "data" / "hcp" / "clips" / "train.h5") as h5:
        assert h5["frames"].shape == (39, 8, 32, 32, 3)
        assert h5["clip_id"][0].decode() == "MOVIE1_segA_1"
    with h5py.File(tmp_path / "data" / "hcp" / "clips" / "test.h5") as h5:
        assert h5["frames"].shape == (10, 8, 32, 32, 3)
    assert len((tmp_path / "data" / "hcp" / "raw_manifest.sha256").read_text().splitlines()) == 2 + 2 + 1

    # A configured parcellation file is an input of preprocessing, not only a path: replaced in place, it reruns it.
    dlabel = tmp_path / "parcels.dlabel.nii"
    dlabel.write_bytes(b"a parcellation")
    settings = yaml.safe_load(config.read_text())
    settings["hcp"]["dlabel"] = str(dlabel)
    config.write_text(yaml.safe_dump(settings))
    dry = subprocess.run([*command, "--configfile", str(config), "-n", targets[0]], capture_output=True, text=True)
    (block,) = job_blocks(dry.stdout, "preprocess_fmri_hcp")
    assert str(dlabel) in block.split("output:")[0]


def test_hcp_raw_fetches_support_files_from_an_s3_prefix(tmp_path):
    class FakeS3:  # the two calls s3_download makes, serving an in-memory bucket
        objects = {"resources/stimuli/7T_MOVIE1_CC1_v2.mp4": b"movie bytes"}

        def head_object(self, Bucket, Key):
            return {"ContentLength": len(self.objects[Key])}

        def get_object(self, Bucket, Key):
            data = self.objects[Key]
            return {"Body": StreamingBody(io.BytesIO(data), len(data)), "ContentLength": len(data)}

    runs = HCP_MOVIE_RUNS[:1]
    run_file = tmp_path / hcp_movie_keys("100610", runs)[0]
    run_file.parent.mkdir(parents=True)
    run_file.write_bytes(b"run")
    support = ["stimuli/7T_MOVIE1_CC1_v2.mp4"]
    ensure_hcp_raw(
        tmp_path, ["100610"], runs, support, tmp_path / "m.sha256", support_prefix="resources/", client=FakeS3()
    )
    assert (tmp_path / support[0]).read_bytes() == b"movie bytes"
