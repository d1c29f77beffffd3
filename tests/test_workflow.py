"""Integration tests: the Snakemake workflow itself (lint, format, config validation, a real run of the tiny config)."""

import subprocess
import sys

import pytest
import yaml

from .conftest import REPO, TINY_CONFIG

SNAKEFILE = REPO / "Snakefile"
SNAKEMAKE = [sys.executable, "-m", "snakemake", "-s", str(SNAKEFILE)]


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
    jobs = [line.split() for line in result.stdout.splitlines() if line.startswith(("demo_world ", "all "))]
    assert {tuple(j) for j in jobs} == {("demo_world", "1"), ("all", "1")}


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

