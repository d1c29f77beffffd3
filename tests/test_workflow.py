"""Integration tests: the Snakemake workflow itself (lint, format, config validation, a real run of the tiny config)."""

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

from .conftest import REPO, TINY_CONFIG

SNAKEFILE = REPO / "Snakefile"
SNAKEMAKE = [sys.executable, "-m", "snakemake", "-s", str(SNAKEFILE)]
JOB_NAMES = [["demo_world"], ["preprocess_fmri"], ["extract_clips"], ["all"], ["total"]]


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
    assert counts == {"demo_world": "1", "preprocess_fmri": "3", "extract_clips": "2", "all": "1", "total": "7"}


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


def _cc2017_config(tmp_path, raw_dir, download_url):
    settings = yaml.safe_load(TINY_CONFIG.read_text())
    settings["datasets"] = ["cc2017"]
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


def test_cc2017_layout_downloads_from_a_mirror_then_preprocesses(tmp_path, cc2017_mirror):
    raw = tmp_path / "cc2017_raw"
    config = _cc2017_config(tmp_path, raw, cc2017_mirror)
    snakemake(tmp_path, "--configfile", str(config), "--cores", "2")
    manifest = (tmp_path / "data" / "cc2017" / "raw_manifest.sha256").read_text().splitlines()
    assert len(manifest) == 5 + 2 * (3 * 2 + 2 * 3)
    assert all(len(line.split("  ")[0]) == 64 for line in manifest)
    with h5py.File(tmp_path / "data" / "cc2017" / "fmri" / "subject2.h5") as h5:
        runs = {run["name"]: run["reps"] for run in json.loads(h5.attrs["runs"])}
        assert runs["test2"] == [1, 2] and runs["test1"] == [1, 2, 3]  # the excluded presentation is left out
        assert h5["test"].shape == (16, 120)
    assert (tmp_path / "data" / "cc2017" / "clips" / "train.h5").exists()
