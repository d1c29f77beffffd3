import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from semvideo_core.world.config import WorldConfig
from semvideo_core.world.generate import generate_world

REPO = Path(__file__).resolve().parents[1]
TINY_CONFIG = REPO / "tests" / "configs" / "tiny.yaml"
SNAKEFILE = REPO / "Snakefile"
SNAKEMAKE = [sys.executable, "-m", "snakemake", "-s", str(SNAKEFILE)]


def snakemake(workdir, *args, check=True, timeout=600):
    result = subprocess.run([*SNAKEMAKE, "-d", str(workdir), *args], capture_output=True, text=True, timeout=timeout)
    if check and result.returncode != 0:
        pytest.fail(f"snakemake {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result


def default_world_settings() -> dict:
    """The demo world section of the shipped config.yaml."""
    return yaml.safe_load((REPO / "config.yaml").read_text())["demo"]["world"]


def tiny_world_settings() -> dict:
    return {**default_world_settings(), **yaml.safe_load(TINY_CONFIG.read_text())["demo"]["world"]}


@pytest.fixture(scope="session")
def tiny_world(tmp_path_factory):
    """(config, files, directory) of a tiny world generated once for the session."""
    config = WorldConfig.from_dict(tiny_world_settings())
    out = tmp_path_factory.mktemp("tiny_world")
    files = generate_world(config, out, workers=2)
    return config, files, out


@pytest.fixture()
def half_precision_on_cpu(monkeypatch):
    """The CPU runs what a GPU runs for dtype float16 / bfloat16 and precision fp16 / bf16: the half-precision code
    paths, which no CPU job takes (backends.precision), tested without a GPU."""
    from semvideo_core.backends import precision

    monkeypatch.setattr(precision, "HALF_PRECISION_DEVICES", frozenset({"cuda", "cpu"}))


DECODING_CONFIG = REPO / "tests" / "configs" / "tiny_decoding.yaml"
TINY_RUN = ["--configfile", str(TINY_CONFIG), str(DECODING_CONFIG)]


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    """The whole DAG of the tiny config (with tiny_decoding.yaml over it), run once on 2 cores for the session."""
    workdir = tmp_path_factory.mktemp("tiny_dag")
    snakemake(workdir, *TINY_RUN, "--cores", "2", timeout=1800)  # 96 jobs: about 9 minutes on 2 cores
    return workdir


def planned_jobs(dry_run_output: str) -> dict[str, int]:
    """rule -> job count of a dry run's job table (empty when nothing is to be done)."""
    counts, in_table = {}, False
    for line in dry_run_output.splitlines():
        if line.startswith("Job stats:"):
            in_table = True
            continue
        parts = line.split()
        if in_table and not parts:
            break
        if in_table and len(parts) == 2 and parts[1].isdigit() and parts[0] != "total":
            counts[parts[0]] = int(parts[1])
    return counts


def job_blocks(dry_run_output: str, rule: str) -> list[str]:
    """The lines a dry run prints for each job of `rule` (input, output, reason, resources, ...)."""
    return [block for block in dry_run_output.split("\nrule ")[1:] if block.startswith(f"{rule}:")]


def pytest_terminal_summary(terminalreporter):
    from .slurm_cluster import TIMINGS

    if TIMINGS:
        parts = ", ".join(f"{name} {seconds:.1f} s" for name, seconds in TIMINGS.items())
        terminalreporter.write_line(f"SLURM test cluster: {parts}")
