"""Integration tests: the Snakemake workflow itself (lint, format, config validation, a real run of the tiny config)."""

import csv
import functools
import http.server
import json
import subprocess
import sys
import threading

import h5py
import numpy as np
import pytest
import yaml

from semvideo_core.semminer.captions import read_captions

from .conftest import REPO, TINY_CONFIG
from .openai_server import FakeVLLM

SNAKEFILE = REPO / "Snakefile"
SNAKEMAKE = [sys.executable, "-m", "snakemake", "-s", str(SNAKEFILE)]
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
        "all",
        "total",
    )
]


def snakemake(workdir, *args, check=True):
    result = subprocess.run([*SNAKEMAKE, "-d", str(workdir), *args], capture_output=True, text=True, timeout=600)
    if check and result.returncode != 0:
        pytest.fail(f"snakemake {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result


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
        "all": "1",
        "total": "42",
    }


@pytest.mark.parametrize(
    "override, message",
    [
        ({"demo": {"world": {"snr": -1}}}, "snr"),
        ({"demo": {"world": {"cortical_vertices": []}}}, "cortical_vertices"),
        ({"demo": {"wrld": {}}}, "wrld"),
        ({"datasets": ["cc2017"]}, "cc2017.raw_dir"),
        ({"demo": {"world": {"frame_size": 130}}}, "feature_grid"),
    ],
)
def test_bad_config_stops_before_any_job(tmp_path, override, message):
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(override))
    result = snakemake(tmp_path, "-n", "--configfile", str(bad), check=False)
    assert result.returncode != 0
    assert message in result.stdout + result.stderr
    assert not (tmp_path / "data").exists()


@pytest.mark.parametrize("name", ["cc2017.yaml", "hcp.yaml"])
def test_real_data_configs_validate(tmp_path, name):
    raw = tmp_path / "raw"
    raw.mkdir()
    settings = yaml.safe_load((REPO / "configs" / name).read_text())
    dataset = settings["datasets"][0]
    settings[dataset]["raw_dir"] = str(raw)
    config = tmp_path / name
    config.write_text(yaml.safe_dump(settings))
    result = snakemake(tmp_path, "-n", "--configfile", str(config))
    assert "demo_world" not in result.stdout


def test_tiny_world_runs_end_to_end_and_reruns_only_what_changed(tmp_path):
    snakemake(tmp_path, "--configfile", str(TINY_CONFIG), "--cores", "2")
    raw = tmp_path / "data" / "demo" / "raw"
    assert (raw / "ground_truth.h5").stat().st_size > 0
    assert len(list(raw.glob("subject*/fmri/*/cifti/*_Atlas.dtseries.nii"))) == 2 * (3 * 2 + 2 * 3)
    assert len(list((raw / "stimuli").glob("*.mp4"))) == 5
    assert "demo world written" in (tmp_path / "logs" / "demo_world.log").read_text()
    assert (tmp_path / "logs" / "benchmark" / "demo_world.tsv").exists()
    for subject, vertices in (("subject1", 400), ("subject2", 460)):
        with h5py.File(tmp_path / "data" / "demo" / "fmri" / f"{subject}.h5") as h5:
            assert h5["train"].shape == (3 * 8, 2, 120) and h5["test"].shape == (2 * 8, 120)
            assert h5["voxel_index"][:].max() < vertices
    with h5py.File(tmp_path / "data" / "demo" / "clips" / "train.h5") as h5:
        assert h5["frames"].shape == (3 * 8, 6, 32, 32, 3) and h5["frames"].dtype == np.uint8
    with h5py.File(tmp_path / "data" / "demo" / "clips" / "test.h5") as h5:
        assert [s.decode() for s in h5["clip_id"][:2]] == ["test1_1", "test1_2"]
    captions = tmp_path / "data" / "demo" / "captions"
    for level, name in (("anchor", "img"), ("motion", "motion"), ("holistic", "video"), ("basic", "basic")):
        imported = read_captions(captions / f"{level}.csv")
        assert list(imported)[:2] == ["seg1_1", "seg1_2"] and len(imported) == 3 * 8 + 2 * 8
        assert imported == read_captions(raw / "CC2017-SE" / f"{name}_descriptions.csv")
    with open(tmp_path / "results" / "demo" / "semantic_retrieval.csv") as handle:
        table = list(csv.DictReader(handle))
    assert {(r["variant"], r["subject"], r["level"]) for r in table} == {
        (v, s, level)
        for v in ("sad", "sad_mlp", "ridge")
        for s in ("subject1", "subject2")
        for level in ("anchor", "motion", "holistic")
    }
    assert all(r["n_test"] == "16" and 0 <= float(r["top1"]) <= 1 for r in table)
    assert (tmp_path / "models" / "demo" / "sad" / "motion" / "state" / "pretrain" / "log.csv").exists()

    assert "Nothing to be done" in snakemake(tmp_path, "--configfile", str(TINY_CONFIG), "-n").stdout

    changed = tmp_path / "changed.yaml"
    settings = yaml.safe_load(TINY_CONFIG.read_text())
    settings["demo"]["world"]["snr"] = 0.5
    changed.write_text(yaml.safe_dump(settings))
    dry = snakemake(tmp_path, "--configfile", str(changed), "-n").stdout
    assert "demo_world" in dry and "params" in dry.lower()


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
    result = snakemake(tmp_path, "--configfile", str(config), "--cores", "1", check=False)
    assert result.returncode != 0
    log = (tmp_path / "logs" / "cc2017_raw.log").read_text()
    assert "files are missing under" in log and "stimuli/seg1.mp4" in log and "purr.purdue.edu" in log
    assert not (tmp_path / "data" / "cc2017" / "raw_manifest.sha256").exists()


def test_cc2017_layout_downloads_from_a_mirror_then_preprocesses(tmp_path, cc2017_mirror, tiny_world):
    raw = tmp_path / "cc2017_raw"
    config = _cc2017_config(tmp_path, raw, cc2017_mirror, captions_dir=tiny_world[2] / "CC2017-SE")
    snakemake(tmp_path, "--configfile", str(config), "--cores", "2")
    manifest = (tmp_path / "data" / "cc2017" / "raw_manifest.sha256").read_text().splitlines()
    assert len(manifest) == 5 + 2 * (3 * 2 + 2 * 3)
    assert all(len(line.split("  ")[0]) == 64 for line in manifest)
    with h5py.File(tmp_path / "data" / "cc2017" / "fmri" / "subject2.h5") as h5:
        runs = {run["name"]: run["reps"] for run in json.loads(h5.attrs["runs"])}
        assert runs["test2"] == [1, 2] and runs["test1"] == [1, 2, 3]  # the excluded presentation is left out
        assert h5["test"].shape == (16, 120)
    assert (tmp_path / "data" / "cc2017" / "clips" / "train.h5").exists()
    assert len(read_captions(tmp_path / "data" / "cc2017" / "captions" / "anchor.csv")) == 40


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
    anchors = read_captions(tmp_path / targets[1])
    assert set(anchors) == set(ids) and all(text.startswith("The anchor view") for text in anchors.values())

    # The same DAG with the server launched by the rule: the answers come from the cache, no request is repeated.
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
    assert "40 basic and 120 stage-2 answers already there" in log and "with 0 requests sent" in log
    assert "serving tiny-vl" in (tmp_path / "logs" / "captions" / "demo_server.log").read_text()
