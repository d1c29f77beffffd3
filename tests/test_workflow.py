"""Integration tests: the Snakemake workflow itself (lint, format, config validation, a real run of the tiny config)."""

import csv
import functools
import http.server
import json
import re
import subprocess
import sys
import threading
from pathlib import Path

import h5py
import numpy as np
import pytest
import yaml

from semvideo_core.backends.text import save_tiny_clip
from semvideo_core.data.video import read_mp4
from semvideo_core.io.captions import read_captions
from semvideo_core.io.clip_arrays import read_clip_array

from .conftest import REPO, SNAKEFILE, TINY_CONFIG, TINY_RUN, job_blocks, planned_jobs, snakemake
from .openai_server import FakeVLLM

JOB_NAMES = [
    [name]
    for name in (
        "demo_world",
        "preprocess_fmri",
        "extract_clips",
        "captions",
        "embed_text",
        "train_sad",
        "finetune_sad",
        "decode_sad",
        "ridge",
        "semantic_retrieval",
        "train_vae",
        "encode_latents",
        "train_mad",
        "finetune_mad",
        "decode_mad",
        "train_probe",
        "train_t2i",
        "train_motion_adapter",
        "train_sparsectrl",
        "render_anchor",
        "render_video",
        "preview_video",
        "train_video_judge",
        "judge_truth",
        "truth_flows",
        "evaluate",
        "metrics_table",
        "all",
        "total",
    )
]


def test_lint_is_clean(tmp_path):
    result = snakemake(tmp_path, "--lint", check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_workflow_files_are_snakefmt_formatted():
    files = [str(SNAKEFILE), *map(str, sorted((REPO / "rules").glob("*.smk")))]
    result = subprocess.run([sys.executable, "-m", "snakefmt", "--check", *files], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_default_config_dry_run_shows_demo_world(tmp_path):
    result = snakemake(tmp_path, "-n")
    assert "demo_world" in result.stdout
    counts = dict(line.split() for line in result.stdout.splitlines() if line.split()[:1] in JOB_NAMES)
    assert counts == {
        "demo_world": "1",
        "preprocess_fmri": "3",
        "extract_clips": "2",
        "captions": "1",
        "embed_text": "3",
        "train_sad": "3",
        "finetune_sad": "9",
        "decode_sad": "9",
        "ridge": "9",
        "semantic_retrieval": "1",
        "train_vae": "1",
        "encode_latents": "2",
        "train_mad": "1",
        "finetune_mad": "3",
        "decode_mad": "10",  # 3 variants x 3 subjects, and the oracle once
        "train_probe": "1",
        "train_t2i": "1",
        "train_motion_adapter": "1",
        "train_sparsectrl": "1",
        "render_anchor": "13",
        "render_video": "16",
        "preview_video": "16",
        "train_video_judge": "1",
        "judge_truth": "1",
        "truth_flows": "1",
        "evaluate": "19",
        "metrics_table": "1",
        "all": "1",
        "total": "131",
    }


@pytest.mark.parametrize(
    "override, message",
    [
        ({"demo": {"world": {"snr": -1}}}, "snr"),
        ({"demo": {"world": {"cortical_vertices": []}}}, "cortical_vertices"),
        ({"demo": {"wrld": {}}}, "wrld"),
        ({"datasets": ["cc2017"]}, "cc2017.raw_dir"),
        ({"demo": {"world": {"frame_size": 130}}}, "feature_grid"),
        ({"datasets": ["cc2017"], "cc2017": {"raw_dir": "raw"}}, "backend demo is the demo world's own judge"),
        ({"evaluation": {"frames": 5}}, "evaluation.frames must be even"),
        ({"mad": {"init": "ridge"}}, "it needs mad.model.linear_readout true"),
        ({"evaluation": {"variants": ["oracle"]}, "render": {"variants": ["full"]}}, "render.variants does not render"),
        ({"probe": {"dense_weight": 0}}, "probe.colour_readout dense reads the dense maps"),
        ({"probe": {"dense_stage": 4}}, "probe.dense_stage 4 is not one of the 4 stages"),
        ({"render": {"video": {"init_strength": 0.1}}}, "render.video.init_strength 0.1 x steps 6 leaves no denoising"),
        ({"render": {"anchor": {"strength": 0.05}}}, "render.anchor.strength 0.05 x steps 10 leaves no denoising"),
    ],
)
def test_bad_config_stops_before_any_job(tmp_path, override, message):
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(override))
    result = snakemake(tmp_path, "-n", "--configfile", str(bad), check=False)
    assert result.returncode != 0
    assert message in result.stdout + result.stderr
    assert not (tmp_path / "data").exists()


@pytest.mark.parametrize(
    "target, message",
    [
        ("videos/demo/oracle/subject1/video.h5", "oracle/subject1: oracle needs no fMRI; it is built once, as truth"),
        ("predictions/demo/full/truth/motion_frames.h5", "full/truth: truth stands for no subject, only in oracle"),
    ],
)
def test_a_variant_under_the_wrong_subject_names_the_path(tmp_path, target, message):
    result = snakemake(tmp_path, "-n", target, check=False)
    assert result.returncode != 0
    assert message in result.stdout + result.stderr


@pytest.mark.parametrize("packing, planned", [(False, 1), (True, 0)])
def test_the_truth_flows_are_stored_unless_each_reconstruction_has_its_own_truth(tmp_path, packing, planned):
    """The references' GIF packing gives each reconstruction its own truth half: its evaluations compute the flows."""
    override = tmp_path / "packing.yaml"
    override.write_text(yaml.safe_dump({"evaluation": {"reference_packing": packing}}))
    plan = planned_jobs(snakemake(tmp_path, "-n", "--configfile", str(override)).stdout)
    assert plan["evaluate"] == 19 and plan.get("truth_flows", 0) == planned


def _real_data_config(tmp_path, name) -> Path:
    """configs/<name> with an empty raw folder and stand-in model folders (weight folders are inputs)."""
    raw = tmp_path / "raw"
    raw.mkdir()
    settings = yaml.safe_load((REPO / "configs" / name).read_text())
    dataset = settings["datasets"][0]
    settings[dataset]["raw_dir"] = str(raw)
    for part_name, part in settings["models"].items():
        if part.get("path"):
            (tmp_path / part_name).mkdir()
            (tmp_path / part_name / "config.json").write_text("{}")
            part["path"] = str(tmp_path / part_name)
    config = tmp_path / name
    config.write_text(yaml.safe_dump(settings))
    return config


@pytest.mark.parametrize("name", ["cc2017.yaml", "hcp.yaml"])
def test_real_data_configs_validate(tmp_path, name):
    result = snakemake(tmp_path, "-n", "--configfile", str(_real_data_config(tmp_path, name)))
    assert "demo_world" not in result.stdout


# The rules that run on `device: cuda` in configs/cc2017.yaml (SAD, MAD, text embedding, VAE encoding, rendering,
# judging); everything else (preprocessing, ridge, SAD's decoding, tables) runs on CPU.
CC2017_GPU_RULES = {
    "embed_text",
    "train_sad",
    "finetune_sad",
    "encode_latents",
    "train_mad",
    "finetune_mad",
    "decode_mad",
    "render_anchor",
    "render_video",
    "judge_truth",
    "evaluate",
}


def test_the_slurm_profile_requests_a_gpu_for_every_gpu_rule_of_cc2017(tmp_path):
    config = _real_data_config(tmp_path, "cc2017.yaml")
    plan = snakemake(tmp_path, "-n", "--profile", str(REPO / "profiles" / "slurm"), "--configfile", str(config)).stdout
    gpus = {}
    for rule in set(planned_jobs(plan)) - {"all"}:
        for block in job_blocks(plan, rule):
            gpus.setdefault(rule, set()).add(int(re.search(r"\bgpu=(\d+)", block).group(1)))
    assert {rule for rule, counts in gpus.items() if counts == {1}} == CC2017_GPU_RULES
    assert all(counts in ({0}, {1}) for counts in gpus.values()), gpus


def test_tiny_world_runs_end_to_end(tiny_run):
    tmp_path = tiny_run
    raw = tmp_path / "data" / "demo" / "raw"
    assert (raw / "ground_truth.h5").stat().st_size > 0
    assert len(list(raw.glob("subject*/fmri/*/cifti/*_Atlas.dtseries.nii"))) == 2 * (12 * 2 + 2 * 3)
    assert len(list((raw / "stimuli").glob("*.mp4"))) == 14
    assert "demo world written" in (tmp_path / "logs" / "demo_world.log").read_text()
    assert (tmp_path / "logs" / "benchmark" / "demo_world.tsv").exists()
    for subject, vertices in (("subject1", 500), ("subject2", 560)):
        with h5py.File(tmp_path / "data" / "demo" / "fmri" / f"{subject}.h5") as h5:
            assert h5["train"].shape == (12 * 20, 2, 200) and h5["test"].shape == (2 * 20, 200)
            assert h5["voxel_index"][:].max() < vertices
    with h5py.File(tmp_path / "data" / "demo" / "clips" / "train.h5") as h5:
        assert h5["frames"].shape == (12 * 20, 6, 32, 32, 3) and h5["frames"].dtype == np.uint8
    with h5py.File(tmp_path / "data" / "demo" / "clips" / "test.h5") as h5:
        assert [s.decode() for s in h5["clip_id"][:2]] == ["test1_1", "test1_2"]
    captions = tmp_path / "data" / "demo" / "captions"
    for level, name in (("anchor", "img"), ("motion", "motion"), ("holistic", "video"), ("basic", "basic")):
        imported = read_captions(captions / f"{level}.csv")
        assert list(imported)[:2] == ["seg1_1", "seg1_2"] and len(imported) == 12 * 20 + 2 * 20
        assert imported == read_captions(raw / "CC2017-SE" / f"{name}_descriptions.csv")
    assert (tmp_path / "models" / "demo" / "sad" / "motion" / "state" / "pretrain" / "log.csv").exists()
    assert not list((tmp_path / "models").rglob("checkpoint.safetensors")), "finished jobs leave no resumable state"
    assert "Nothing to be done" in snakemake(tmp_path, *TINY_RUN, "-n").stdout


def test_tiny_world_decoders_beat_chance(tiny_run):
    """A wrong lag or clip-id pairing decodes at chance: SAD's read-out (its MLP, variant sad_mlp) and ridge must
    beat it on average over subjects and levels, and ridge's decodes correlate with the truth feature by feature.
    SAD's Refineformer output (variant sad) is not held to it: on this small world it stays at chance (README,
    "Semantics")."""
    with open(tiny_run / "results" / "demo" / "semantic_retrieval.csv") as handle:
        table = list(csv.DictReader(handle))
    assert {(r["variant"], r["subject"], r["level"]) for r in table} == {
        (v, s, level)
        for v in ("sad", "sad_mlp", "ridge")
        for s in ("subject1", "subject2")
        for level in ("anchor", "motion", "holistic")
    }
    assert all(r["n_test"] == "40" for r in table)
    for variant in ("sad_mlp", "ridge"):
        rows = [r for r in table if r["variant"] == variant]
        gains = [float(r["top1"]) - float(r["chance"]) for r in rows]
        assert np.mean(gains) > 0.02 and sum(g > 0 for g in gains) >= 4, (variant, rows)
    ridge_r = [float(r["r"]) for r in table if r["variant"] == "ridge"]  # unrelated decodes: r about 0
    assert np.mean(ridge_r) > 0.03 and min(ridge_r) > 0, ridge_r


def identification(predicted: np.ndarray, truth: np.ndarray, mean: np.ndarray) -> float:
    """Top-1 identification among the test clips: the true clip most correlated with each prediction (both as
    deviations from the training mean latent) is its own."""
    p, t = (predicted - mean).reshape(len(predicted), -1), (truth - mean).reshape(len(truth), -1)
    p, t = p - p.mean(1, keepdims=True), t - t.mean(1, keepdims=True)
    p, t = p / np.linalg.norm(p, axis=1, keepdims=True), t / np.linalg.norm(t, axis=1, keepdims=True)
    return float(((p @ t.T).argmax(1) == np.arange(len(p))).mean())


def test_tiny_world_motion_stage_writes_every_variant(tiny_run):
    """Every MAD variant writes latents and motion frames of every test clip; the oracle's latents are the true
    ones (perfect identification), and the motion tokens change MAD's decode (full differs from no_motion). Whether
    MAD beats ridge and the mean frame is measured on the default demo world by benchmarks/mad_quality.py: on this
    tiny world (16-px frames, 240 training clips) even ridge identifies the test clips' latents at chance."""
    latents = tiny_run / "data" / "demo" / "latents"
    truth, ids = read_clip_array(latents / "test.h5", "latents")
    mean = read_clip_array(latents / "train.h5", "latents")[0].astype(np.float64).mean(0)
    assert truth.shape == (40, 6, 4, 8, 8) and truth.dtype == np.float16
    predicted = {}
    for variant in ("full", "no_motion", "ridge", "oracle"):
        for subject in ("truth",) if variant == "oracle" else ("subject1", "subject2"):  # the oracle reads no fMRI
            folder = tiny_run / "predictions" / "demo" / variant / subject
            frames, frame_ids = read_clip_array(folder / "motion_frames.h5", "frames")
            assert frame_ids == ids and frames.shape == (40, 6, 16, 16, 3) and frames.dtype == np.uint8
            predicted[variant, subject] = read_clip_array(folder / "motion_latents.h5", "latents", ids)[0]
    assert identification(predicted["oracle", "truth"].astype(np.float64), truth, mean) == 1.0
    assert not (tiny_run / "predictions" / "demo" / "oracle" / "subject1").exists()
    assert np.abs(predicted["full", "subject1"].astype(np.float64) - predicted["no_motion", "subject1"]).max() > 0


def test_tiny_world_renders_every_variant_and_trains_the_probe(tiny_run):
    """Every render variant writes an anchor frame per test clip (the oracle's, from true embeddings and latents,
    differs from full's), and videos with an mp4 per clip and a side-by-side sheet (the ablations cover the first
    render.ablation_clips clips); the scene probe reads the colour of the ground-truth test frames' largest object well above
    chance (0.72 against 0.23 when written; this small test set's few shots put chance at 0.6 for the background). Probe
    accuracies of the renders are measured on the default world by benchmarks/render_quality.py."""
    anchors = {}
    for variant, clips in (("full", 40), ("no_anchor", 8), ("no_motion", 8), ("ridge", 40), ("oracle", 40)):
        for subject in ("truth",) if variant == "oracle" else ("subject1", "subject2"):
            folder = tiny_run / "videos" / "demo" / variant / subject
            frames, ids = read_clip_array(folder / "anchor.h5", "anchor")
            assert frames.shape == (clips, 16, 16, 3) and frames.dtype == np.uint8 and ids[0] == "test1_1"
            anchors[variant, subject] = frames
    assert (anchors["full", "subject1"] != anchors["oracle", "truth"]).any()
    assert (anchors["full", "subject1"][:8] != anchors["no_anchor", "subject1"]).any()
    for variant, clips in (
        ("full", 40),
        ("no_anchor", 8),
        ("no_holi", 8),
        ("no_motion", 8),
        ("ridge", 40),
        ("oracle", 40),
    ):
        folder = tiny_run / "videos" / "demo" / variant / ("truth" if variant == "oracle" else "subject2")
        frames, ids = read_clip_array(folder / "video.h5", "frames")
        assert frames.shape == (clips, 6, 16, 16, 3) and ids[0] == "test1_1", variant
        mp4s = sorted(folder.joinpath("mp4").glob("*.mp4"))
        assert len(mp4s) == clips and read_mp4(mp4s[0])[0].shape == (6, 16, 16, 3)
        assert read_mp4(folder / "sheet.mp4")[0].shape == (6, 2 * 16, 4 * 16, 3)  # 2 clips x 4 columns
    assert not list((tiny_run / "videos").rglob("*.npy")), "finished render jobs leave no cache"
    probe = json.loads((tiny_run / "models" / "demo" / "probe.json").read_text())
    assert probe["test_accuracy"]["colour"] > probe["test_chance"]["colour"] + 0.2, probe


EVALUATED = ("full", "no_anchor", "no_holi", "no_motion", "ridge", "oracle", "motion_frames")
METRIC_COLUMNS = ("2way_I", "50way_I", "2way_V", "vifi", "ssim", "psnr", "hue_pcc", "clip_pcc", "epe")


def test_tiny_world_main_job_writes_the_metrics_table_figures_and_report(tiny_run, tmp_path):
    """The main job's table has a row per variant and subject plus their mean with every metric filled (the
    ablations over their 8 clips), the oracle above chance on the N-way expectations; the figures are images and
    `snakemake --report` writes the HTML report. How the variants compare is measured on the default demo world
    (README, "Evaluation")."""
    with open(tiny_run / "results" / "metrics.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert {(r["variant"], r["subject"]) for r in rows} == {
        (v, s) for v in EVALUATED for s in (("truth",) if v == "oracle" else ("subject1", "subject2")) + ("mean",)
    }
    for row in rows:
        assert all(np.isfinite(float(row[c])) for c in METRIC_COLUMNS), row
        per_subject = 8 if row["variant"] in ("no_anchor", "no_holi", "no_motion") else 40
        subjects = 2 if row["subject"] == "mean" and row["variant"] != "oracle" else 1
        assert int(row["clips"]) == per_subject * subjects, row
    oracle = next(r for r in rows if r["variant"] == "oracle" and r["subject"] == "mean")
    assert float(oracle["2way_I_expected"]) > 0.75 and float(oracle["2way_V_expected"]) > 0.75, oracle
    assert "published: SemVideo (paper)" in (tiny_run / "results" / "metrics.md").read_text()
    import matplotlib.image

    for name in ("ssim", "epe", "2way_V", "frames_demo"):
        assert matplotlib.image.imread(tiny_run / "results" / "figures" / f"{name}.png").ndim == 3
    with open(tiny_run / "results" / "demo" / "clips" / "oracle" / "truth.csv", newline="") as handle:
        assert len(list(csv.DictReader(handle))) == 40
    report = tmp_path / "report.html"
    snakemake(tiny_run, *TINY_RUN, "--report", str(report), timeout=900)
    assert report.stat().st_size > 10_000 and "metrics.csv" in report.read_text(errors="ignore")


def test_jobs_running_at_once_never_use_more_threads_than_cores(tiny_run):
    """Every job log records when the job ran and on how many threads; with --cores 2 their sum stays <= 2."""
    events = []
    for log in (tiny_run / "logs").rglob("*.log"):
        text = log.read_text()
        started = re.search(r"job started at ([0-9.]+) on (\d+) threads", text)
        ended = re.search(r"job ended at ([0-9.]+)", text)
        if started and ended:
            events += [(float(started[1]), int(started[2])), (float(ended[1]), -int(started[2]))]
    assert len(events) >= 2 * 30
    running = most = 0
    for _, change in sorted(events, key=lambda e: (e[0], e[1])):  # at a tie, an end comes before a start
        running += change
        most = max(most, running)
    assert most <= 2


def test_the_installed_snakemake_counts_a_lone_jobs_threads(tmp_path):
    """The minimal reproduction of the oversubscription seen on Snakemake < 9.17 (tests/repro/lone_job_cores): a
    lone ready job's threads were never taken from the free cores but were given back when it ended, so every
    later selection believed it had more cores than --cores."""
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "snakemake",
            "-s",
            str(REPO / "tests" / "repro" / "lone_job_cores" / "Snakefile"),
            "-d",
            str(tmp_path),
            "--cores",
            "2",
            "-q",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    spans = [tuple(map(float, path.read_text().split())) for path in (tmp_path / "out").glob("work_*.txt")]
    assert len(spans) == 3
    overlapping = [(a, b) for a in spans for b in spans if a < b and b[0] < a[1]]
    assert not overlapping, f"threads: 2 jobs ran at once on 2 cores: {overlapping}"


# Renders that depend on SAD's decodes or MAD's full / no_motion frames: anchor frames of full, no_anchor,
# no_motion; videos of full, no_anchor, no_holi, no_motion (not ridge's or the oracle's). The oracle reads no fMRI:
# one anchor, video and evaluation job for both subjects.
def videos(jobs):
    """`jobs` video renders and their previews (the mp4s and sheet of each, rule preview_video)."""
    return {"render_video": jobs, "preview_video": jobs}


RENDER_MAD = {"render_anchor": 6, **videos(8)}
RENDER_SUBJECTS = {"render_anchor": 8, **videos(10)}  # every variant but the oracle
RENDER_ALL = {"render_anchor": 9, **videos(11)}
GENERATORS = {"train_t2i": 1, "train_motion_adapter": 1, "train_sparsectrl": 1}
TRUTH = {"train_video_judge": 1, "judge_truth": 1}  # the demo video judge and the judged ground truth
FLOWS = {"truth_flows": 1}  # the ground truth's flows


def scored(rows):
    """`rows` evaluate jobs (table rows of one variant and subject: 6 variants x 2 subjects and the oracle's one in
    all) and the table."""
    return {"evaluate": rows, "metrics_table": 1}


RERUNS_ALL = {
    "train_sad": 3,
    "finetune_sad": 6,
    "decode_sad": 6,
    "semantic_retrieval": 1,
    "all": 1,
    "decode_mad": 2,
    **RENDER_MAD,
    **scored(10),  # the four render variants from MAD's full motion frames, and those frames
}
MAD_MODELS = {"train_mad": 1, "finetune_mad": 2, "decode_mad": 4, "all": 1, **RENDER_MAD, **scored(10)}
MAD_SUBJECTS = {**MAD_MODELS, "decode_mad": 6, **RENDER_SUBJECTS, **scored(12)}  # every variant that reads fMRI
MAD_ALL = {**MAD_MODELS, "decode_mad": 7, **RENDER_ALL, **scored(13)}  # every variant
VAE_ALL = {"train_vae": 1, "encode_latents": 2, **GENERATORS, **MAD_ALL}


CHECKPOINTED = ("vae", "probe", "video_judge", "t2i", "motion_adapter", "sparsectrl")  # one `train` phase each


@pytest.mark.parametrize(
    "change, expected",
    [
        (
            {"demo": {"world": {"snr": 0.5}}},
            {
                "demo_world": 1,
                "preprocess_fmri": 2,
                "extract_clips": 2,
                "captions": 1,
                "embed_text": 3,
                "ridge": 6,
                "train_probe": 1,
                **RERUNS_ALL,
                **VAE_ALL,
                **TRUTH,
                **FLOWS,
            },
        ),
        ({"preprocess": {"detrend_order": 3}}, {"preprocess_fmri": 2, "ridge": 6, **RERUNS_ALL, **MAD_SUBJECTS}),
        (
            {"clips": {"size": 16}},
            {
                "extract_clips": 2,
                "captions": 1,
                "embed_text": 3,
                "ridge": 6,
                "train_probe": 1,
                **RERUNS_ALL,
                **VAE_ALL,
                **TRUTH,
                **FLOWS,
            },
        ),
        (
            {"embed": {"tokens": 24}},
            {"embed_text": 3, "ridge": 6, **GENERATORS, **RERUNS_ALL, **MAD_MODELS, **RENDER_ALL, **scored(13)},
        ),
        ({"sad": {"loss": {"soft_clip": 0.5}}}, RERUNS_ALL),
        ({"sad": {"pretrain": {"epochs": 1}}}, RERUNS_ALL),
        (
            {"sad": {"finetune": {"epochs": 3}}},
            {
                "finetune_sad": 6,
                "decode_sad": 6,
                "semantic_retrieval": 1,
                "decode_mad": 2,
                "all": 1,
                **RENDER_MAD,
                **scored(10),
            },
        ),
        (
            {"sad": {"decode": {"steps": 3}}},
            {"decode_sad": 6, "semantic_retrieval": 1, "decode_mad": 2, "all": 1, **RENDER_MAD, **scored(10)},
        ),
        (
            {"ridge": {"alphas": [1, 10]}},
            {
                "ridge": 6,
                "semantic_retrieval": 1,
                "decode_mad": 2,
                "all": 1,
                "render_anchor": 2,
                **videos(2),
                **scored(2),
            },
        ),
        ({"vae": {"kl_weight": 1.0e-5}}, VAE_ALL),
        ({"latents": {"batch_size": 32}}, {"encode_latents": 2, **GENERATORS, **MAD_ALL}),
        ({"mad": {"motion": {"drop": 0.2}}}, MAD_MODELS),
        ({"mad": {"val_block": 2}}, MAD_MODELS),
        ({"mad": {"select_best": True}}, MAD_MODELS),
        ({"mad": {"init": "ridge", "model": {"linear_readout": True}}}, MAD_MODELS),
        (
            {"mad": {"calibrate": True}},
            {"finetune_mad": 2, "decode_mad": 4, "all": 1, **RENDER_MAD, **scored(10)},
        ),
        (
            {"mad": {"finetune": {"epochs": 3}}},
            {"finetune_mad": 2, "decode_mad": 4, "all": 1, **RENDER_MAD, **scored(10)},
        ),
        ({"mad": {"decode": {"batch_size": 8}}}, {"decode_mad": 7, "all": 1, **RENDER_ALL, **scored(13)}),
        ({"mad": {"motion": {"source": "sad_decoded"}}}, {"decode_sad_train": 2, **MAD_MODELS}),
        ({"t2i": {"condition_drop": 0.2}}, {**GENERATORS, "all": 1, **RENDER_ALL, **scored(11)}),
        (
            {"motion_adapter": {"condition_drop": 0.2}},
            {"train_motion_adapter": 1, "train_sparsectrl": 1, "all": 1, **videos(11), **scored(11)},
        ),
        (
            {"sparsectrl": {"train": {"epochs": 2}}},
            {"train_sparsectrl": 1, "all": 1, **videos(11), **scored(11)},
        ),
        ({"render": {"anchor": {"strength": 0.7}}}, {"all": 1, **RENDER_ALL, **scored(11)}),
        ({"render": {"video": {"steps": 3}}}, {"all": 1, **videos(11), **scored(11)}),
        ({"render": {"ablation_clips": 10}}, {"all": 1, "render_anchor": 4, **videos(6), **scored(6)}),
        # What shapes only the mp4s and the sheets: they are re-encoded, no render and no evaluation reruns.
        ({"render": {"video": {"fps": 6}, "sheet_clips": 1}}, {"all": 1, "preview_video": 11}),
        ({"probe": {"train": {"epochs": 2}}}, {"train_probe": 1, "all": 1, **scored(13)}),
        ({"video_judge": {"train": {"epochs": 2}}}, {**TRUTH, "all": 1, **scored(13)}),
        ({"evaluation": {"size": 24}}, {"judge_truth": 1, **FLOWS, "all": 1, **scored(13)}),
        ({"evaluation": {"epe_size": 48}}, {**FLOWS, "all": 1, **scored(13)}),
        # The evaluations compute the truth's flows themselves: the same scores, but their inputs changed.
        ({"evaluation": {"cache_truth_flows": False}}, {"all": 1, **scored(13)}),
        ({"evaluation": {"sample_clips": 3}}, {"all": 1, "metrics_table": 1}),
        ({"resources": {"train_sad": {"mem_mb": 9000}}}, {}),
        ({"captions": {"semminer": {"temperature": 0.7}}}, {}),  # captions are imported: SemMiner's knobs are unread
        # How often each training job saves its state: not what it learns, nothing reruns.
        (
            {
                **{name: {"train": {"checkpoint_every": 7}} for name in CHECKPOINTED},
                **{
                    name: {"pretrain": {"checkpoint_every": 7}, "finetune": {"checkpoint_every": 7}}
                    for name in ("sad", "mad")
                },
            },
            {},
        ),
        # The threshold the voxel selection does not use (tiny.yaml keeps the top K): nothing reruns.
        ({"preprocess": {"alpha": 0.01}}, {}),
        # Half precision on a CPU run, which computes in float32 whatever these say: nothing reruns.
        (
            {
                "latents": {"dtype": "float32"},
                "mad": {"decode": {"dtype": "bfloat16"}, "pretrain": {"precision": "bf16"}},
                "t2i": {"train": {"precision": "fp16"}},
                "render": {"dtype": "bfloat16"},
                "evaluation": {"dtype": "float32"},
            },
            {},
        ),
        # Defaults written out, in another key order than the schema's: the same params, nothing reruns.
        ({"embed": {"device": "cpu", "dtype": "float16"}, "render": {"video": {"seed": 0}, "anchor": {"seed": 0}}}, {}),
    ],
    ids=lambda value: json.dumps(value) if isinstance(value, dict) and value and "all" not in value else "",
)
def test_a_config_change_reruns_exactly_what_depends_on_it(tiny_run, tmp_path, change, expected):
    changed = tmp_path / "changed.yaml"
    changed.write_text(yaml.safe_dump(change))  # merged over the run's config files, as a user's --configfile is
    assert planned_jobs(snakemake(tiny_run, *TINY_RUN, str(changed), "-n").stdout) == expected


def test_model_weights_are_inputs_of_the_rules_that_load_them(tiny_run, tmp_path):
    """New weights in models.*.path rerun the rules that load them: their files are the rules' inputs."""
    save_tiny_clip(tmp_path / "encoder")
    config = tmp_path / "clip.yaml"
    config.write_text(
        yaml.safe_dump({"models": {"text_encoder": {"backend": "clip", "path": str(tmp_path / "encoder")}}})
    )
    dry = snakemake(tiny_run, *TINY_RUN, str(config), "-n").stdout
    weights = str(tmp_path / "encoder" / "model.safetensors")
    embed_jobs = job_blocks(dry, "embed_text")
    assert len(embed_jobs) == 3 and all(weights in block for block in embed_jobs)


def test_a_partial_override_keeps_the_rest_of_its_section(tmp_path):
    """What a job asks the scheduler for, after `resources: {train_sad: {gpu: 1}}` (as configs/cc2017.yaml advises)."""
    override = tmp_path / "partial.yaml"
    override.write_text(yaml.safe_dump({"resources": {"train_sad": {"gpu": 1}}}))
    dry = snakemake(tmp_path, "-n", "--configfile", str(override)).stdout
    train_jobs = job_blocks(dry, "train_sad")
    assert train_jobs and all("runtime=720" in b and "gpu=1" in b and "mem_mb=8000" in b for b in train_jobs)


@pytest.mark.parametrize("profile", ["local", "slurm"])
def test_profiles_dry_run(tmp_path, profile):
    result = snakemake(tmp_path, "-n", "--profile", str(REPO / "profiles" / profile))
    assert "demo_world" in result.stdout


def test_ci_runs_the_readme_test_command():
    readme = (REPO / "README.md").read_text()
    ci = (REPO / ".ci" / "run").read_text()
    command = next(line for line in ci.splitlines() if "pytest" in line)
    assert command in readme


def _cc2017_config(tmp_path, raw_dir, download_url, captions_dir=None):
    settings = yaml.safe_load(TINY_CONFIG.read_text())
    settings["datasets"] = ["cc2017"]
    settings["captions"] = {"precomputed": {"dir": str(captions_dir) if captions_dir else None}}
    settings["cc2017"] = {
        "raw_dir": str(raw_dir),
        "subjects": [1, 2],
        "cortical_vertices": None,  # the tiny world's subjects have 400 and 460
        "train_segments": 3,
        "test_segments": 2,
        "train_repeats": 2,
        "test_repeats": 3,
        "trim": [{"volumes": 13, "drop_first": 1, "drop_last": 4}, {"volumes": 14, "drop_first": 2, "drop_last": 4}],
        "exclude": [{"subject": 2, "run": "test2", "rep": 3}],
        "download_url": download_url,
    }
    path = tmp_path / "cc2017.yaml"
    path.write_text(yaml.safe_dump(settings))
    return path


@pytest.fixture
def cc2017_mirror(tiny_world):
    """A loopback HTTP server serving a world in the raw CC2017 layout, as a mirror of the dataset would."""
    _, _, root = tiny_world
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    handler.log_message = lambda *args: None
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_cc2017_missing_raw_files_stop_with_what_to_place_where(tmp_path):
    config = _cc2017_config(tmp_path, tmp_path / "empty_raw", None)
    result = snakemake(
        tmp_path, "data/cc2017/fmri/subject1.h5", "--configfile", str(config), "--cores", "1", check=False
    )
    assert result.returncode != 0
    log = (tmp_path / "logs" / "cc2017_raw.log").read_text()
    assert "files are missing under" in log and "stimuli/seg1.mp4" in log and "purr.purdue.edu" in log
    assert not (tmp_path / "data" / "cc2017" / "raw_manifest.sha256").exists()


def test_cc2017_layout_downloads_from_a_mirror_then_preprocesses(tmp_path, cc2017_mirror, tiny_world):
    raw = tmp_path / "cc2017_raw"
    config = _cc2017_config(tmp_path, raw, cc2017_mirror, captions_dir=tiny_world[2] / "CC2017-SE")
    targets = ["data/cc2017/fmri/subject2.h5", "data/cc2017/clips/train.h5", "data/cc2017/captions/anchor.csv"]
    snakemake(tmp_path, *targets, "--configfile", str(config), "--cores", "2")  # the stages after are tested on demo
    manifest = (tmp_path / "data" / "cc2017" / "raw_manifest.sha256").read_text().splitlines()
    assert len(manifest) == 5 + 2 * (3 * 2 + 2 * 3)
    assert all(len(line.split("  ")[0]) == 64 for line in manifest)
    with h5py.File(tmp_path / "data" / "cc2017" / "fmri" / "subject2.h5") as h5:
        runs = {run["name"]: run["reps"] for run in json.loads(h5.attrs["runs"])}
        assert runs["test2"] == [1, 2] and runs["test1"] == [1, 2, 3]  # the excluded presentation is left out
        assert h5["test"].shape == (16, 120)
    assert (tmp_path / "data" / "cc2017" / "clips" / "train.h5").exists()
    assert len(read_captions(tmp_path / "data" / "cc2017" / "captions" / "anchor.csv")) == 40
    # Another mirror serves the same files: where they came from decides nothing, so nothing reruns.
    moved = _cc2017_config(tmp_path, raw, "http://10.0.0.1:9/cc2017", captions_dir=tiny_world[2] / "CC2017-SE")
    assert planned_jobs(snakemake(tmp_path, *targets, "--configfile", str(moved), "-n").stdout) == {}


def test_captions_rule_mines_with_semminer_from_a_server_by_url_or_launched(tmp_path, monkeypatch):
    settings = yaml.safe_load(TINY_CONFIG.read_text())
    targets = [f"data/demo/captions/{level}.csv" for level in ("basic", "anchor", "motion", "holistic")]
    with FakeVLLM("tiny-vl", api_key="secret-key") as server:
        settings["captions"] = {
            "source": "semminer",
            "semminer": {
                "model": "tiny-vl",
                "server": {"base_url": server.base_url},
                "frames": {"count": 3, "size": 32},
            },
        }
        config = tmp_path / "semminer.yaml"
        config.write_text(yaml.safe_dump(settings))
        monkeypatch.setenv("VLLM_API_KEY", "secret-key")  # the key comes from the environment only
        snakemake(tmp_path, "--configfile", str(config), "--cores", "2", *targets)
    ids = list(read_captions(tmp_path / targets[0]))
    assert len(ids) == 40 and len(server.completed()) == 4 * 40
    # How the job reaches its server does not decide the captions: another address, key variable, concurrency or
    # retry policy reruns nothing.
    moved = {**settings["captions"]["semminer"], "in_flight": 4, "attempts": 2, "timeout_s": 30.0}
    moved["server"] = {"base_url": "http://10.0.0.1:9000/v1", "api_key_env": "OTHER_KEY", "startup_timeout_s": 5}
    config.write_text(yaml.safe_dump({**settings, "captions": {**settings["captions"], "semminer": moved}}))
    assert planned_jobs(snakemake(tmp_path, "--configfile", str(config), "-n", *targets).stdout) == {}
    anchors = read_captions(tmp_path / targets[1])
    assert set(anchors) == set(ids) and all(text.startswith("The anchor view") for text in anchors.values())

    # The same DAG with the server launched by the rule. A launched server is known by its weights' path and launch
    # command as well as its served name (a server reached by URL may serve other weights under that name), so every
    # request is asked again; a rerun of the launched job then takes every answer from the cache.
    settings["captions"]["semminer"]["server"] = {
        "mode": "launch",
        "command": [sys.executable, str(REPO / "tests" / "openai_server.py"), "--port", "{port}", "--model", "{model}"],
        "startup_timeout_s": 60,
    }
    config.write_text(yaml.safe_dump(settings))
    monkeypatch.delenv("VLLM_API_KEY")
    snakemake(tmp_path, "--configfile", str(config), "--cores", "2", *targets)
    log = (tmp_path / "logs" / "captions" / "demo.log").read_text()
    assert "server ready at http://127.0.0.1:" in log and "server stopped" in log
    assert "40 basic and 120 stage-2 answers already there" in log
    # every answer asked again: 160 requests, and a few more where the test server refused a connection under load
    assert int(re.search(r"with (\d+) requests sent", log).group(1)) >= 160
    assert "serving tiny-vl" in (tmp_path / "logs" / "captions" / "demo_server.log").read_text()
    # --forcerun last: it takes every argument after it, and the targets would become rules to force
    snakemake(tmp_path, "--configfile", str(config), "--cores", "2", *targets, "--forcerun", "captions")
    log = (tmp_path / "logs" / "captions" / "demo.log").read_text()
    assert "80 basic and 240 stage-2 answers already there" in log and "with 0 requests sent" in log


def _index_encoding_cc2017(raw, vertices_per_hemisphere=123, seed=0):
    """Raw CC2017 files in which every volume encodes its own index: in a run, volume i (0-based) is a spike at
    cortical vertex i, on a background repeated across presentations (so that every vertex passes selection). Runs have CC2017's real lengths, written
    here by hand: 1 + 240 + 4 = 245 volumes for seg* and test1, 2 + 240 + 4 = 246 for test2."""
    from nibabel.cifti2 import BrainModelAxis

    from semvideo_core.data.cifti import write_dtseries

    models = BrainModelAxis.from_surface(np.arange(vertices_per_hemisphere), vertices_per_hemisphere, name="CortexLeft")
    models += BrainModelAxis.from_surface(
        np.arange(vertices_per_hemisphere), vertices_per_hemisphere, name="CortexRight"
    )
    rng = np.random.default_rng(seed)
    lengths = {"seg1": 245, "seg2": 245, "test1": 245, "test2": 246}
    for movie, volumes in lengths.items():
        (raw / "stimuli").mkdir(parents=True, exist_ok=True)
        (raw / "stimuli" / f"{movie}.mp4").write_bytes(b"not read by preprocessing")
        shared = rng.normal(size=(volumes, len(models)))  # the same in both presentations: every vertex reproducible
        for rep in (1, 2):
            data = 100 + shared + 0.3 * rng.normal(size=(volumes, len(models)))
            data[np.arange(volumes), np.arange(volumes)] += 50.0
            path = raw / "subject1" / "fmri" / movie / "cifti" / f"{movie}_{rep}_Atlas.dtseries.nii"
            path.parent.mkdir(parents=True, exist_ok=True)
            write_dtseries(path, data, models, 2.0)


@pytest.mark.parametrize("lag", [0, 2])
def test_cc2017_trimming_and_lag_pair_each_clip_with_the_right_volume(tmp_path, lag):
    """Output-level oracle: clip j of a 245-volume run must hold volume 1 + lag + j, of a 246-volume run volume
    2 + lag + j (CC2017's 1 / 2 leading volumes), whatever the workflow's own constants say."""
    raw = tmp_path / "raw"
    _index_encoding_cc2017(raw)
    settings = {
        "datasets": ["cc2017"],
        "cc2017": {
            "raw_dir": str(raw),
            "subjects": [1],
            "cortical_vertices": 246,
            "train_segments": 2,
            "test_segments": 2,
            "train_repeats": 2,
            "test_repeats": 2,
            "lag_trs": lag,
            "exclude": [],
        },
        "preprocess": {"selection": "top_k", "top_k": 246},
    }
    config = tmp_path / "index.yaml"
    config.write_text(yaml.safe_dump(settings))
    snakemake(tmp_path, "--configfile", str(config), "--cores", "1", "data/cc2017/fmri/subject1.h5")
    with h5py.File(tmp_path / "data" / "cc2017" / "fmri" / "subject1.h5") as h5:
        columns = h5["voxel_index"][:]
        train_ids = [c.decode() for c in h5["train_clip_id"][:]]
        test_ids = [c.decode() for c in h5["test_clip_id"][:]]
        train, test = h5["train"][:], h5["test"][:]
    assert train_ids == [f"seg{m}_{j}" for m in (1, 2) for j in range(1, 241)]
    assert test_ids == [f"test{m}_{j}" for m in (1, 2) for j in range(1, 241)]
    leading = {"seg1": 1, "seg2": 1, "test1": 1, "test2": 2}
    for rows, ids in ((train.mean(1), train_ids), (test, test_ids)):
        encoded = columns[rows.argmax(1)]
        expected = [leading[c.rsplit("_", 1)[0]] + lag + int(c.rsplit("_", 1)[1]) - 1 for c in ids]
        assert encoded.tolist() == expected
