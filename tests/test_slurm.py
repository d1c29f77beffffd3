"""Cluster submission on a real SLURM: the tiny DAG through `--profile profiles/slurm` on a single-node cluster.

One run is interrupted a third of the way (Ctrl-C, as a user would) and resumed with the same command; then a job is
made to fail. The tests read what SLURM itself recorded (`scontrol show job`, kept for an hour after each job ends).
Skipped where the cluster cannot start (not root, SLURM not installed): `.ci/run` installs it with apt.

The cluster runs the tiny DAG with one render variant (`full`, and MAD's motion frames) instead of seven: every rule
is still in it, as 56 jobs rather than 96, since each job pays about 7 s (5.8-8.0 s) on these 2 cores for the
two Snakemake start-ups of the plugin's job step. What it writes is compared with the same files of the suite's local
tiny run.
"""

import re
import select
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from .conftest import DECODING_CONFIG, REPO, SNAKEMAKE, TINY_CONFIG, TINY_RUN, planned_jobs, snakemake
from .slurm_cluster import SYSTEM_CONF, TIMINGS, SlurmCluster, missing_requirements

pytestmark = pytest.mark.skipif(missing_requirements() is not None, reason=str(missing_requirements()))

PROFILE = ["--profile", str(REPO / "profiles" / "slurm")]
# No accounting database on the test cluster: job states come from squeue. Status checks start 2 s after a
# submission instead of the plugin's 40 s, so the small jobs of the tiny DAG do not wait on the poller.
TEST_CLUSTER = ["--slurm-status-command", "squeue", "--slurm-init-seconds-before-status-checks", "2"]
TRAIN_SAD_OVERRIDE = {"mem_mb": 1234, "gpu": 1}  # a partial override: threads and runtime stay the schema's
ONE_VARIANT = {"mad": {"variants": ["full"]}, "render": {"variants": ["full"]}}
COMPARED = [
    "demo/semantic_retrieval.csv",
    *(f"demo/clips/{v}/subject{s}.csv" for v in ("full", "motion_frames") for s in (1, 2)),
]


def _rule_of(comment: str) -> str:
    """The rule a SLURM job ran, from the plugin's --comment `rule_<name>[_wildcards_<values>]`."""
    return comment.removeprefix("rule_").split("_wildcards_")[0]


def _minutes(limit: str) -> int:
    """SLURM's [D-]HH:MM:SS time limit in minutes."""
    days, _, clock = limit.rpartition("-")
    hours, minutes, seconds = (int(part) for part in clock.split(":"))
    return int(days or 0) * 1440 + hours * 60 + minutes + (seconds > 0)


def _interrupt_after(command, fraction: float, timeout_s: float) -> SimpleNamespace:
    """Run `command`, send it SIGINT (Ctrl-C) once `fraction` of its steps are done, and wait for it to exit.

    The signal goes 1 s after the progress line, while the executor's poller sleeps: the line is printed in the
    middle of a status check, and a Ctrl-C then finds no job to cancel (the executor interface takes the active jobs
    out of its list while it checks them), which leaves them running (README, "Cluster runs").
    """
    # A shell that starts the suite with `&` and no job control makes it ignore SIGINT, and an ignored signal stays
    # ignored across exec: the run would never see the Ctrl-C. Handled here, it is back to the default in the child.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    finally:
        signal.signal(signal.SIGINT, previous)
    lines, done, total, deadline = [], 0, None, time.monotonic() + timeout_s
    while process.poll() is None and time.monotonic() < deadline:
        if not select.select([process.stdout], [], [], 1.0)[0]:
            continue
        line = process.stdout.readline()
        lines.append(line)
        match = re.match(r"(\d+) of (\d+) steps", line)
        if match:
            done, total = int(match.group(1)), int(match.group(2))
            if done >= fraction * total:
                time.sleep(1.0)
                process.send_signal(signal.SIGINT)
                break
    rest = ""
    for _ in range(5):  # a Ctrl-C that lands in a status check is lost (above), most often on a loaded machine
        try:
            rest += process.communicate(timeout=60)[0]
            break
        except subprocess.TimeoutExpired:
            process.send_signal(signal.SIGINT)  # so press it again, as a user would
    else:
        rest += process.communicate(timeout=60)[0]
    return SimpleNamespace(returncode=process.returncode, stdout="".join(lines) + rest, done=done, total=total)


@pytest.fixture(scope="module")
def slurm_runs(tmp_path_factory):
    """Everything the tests below inspect, run once: the dry run, the interrupted run, the resumed run, a failure."""
    root = tmp_path_factory.mktemp("slurm")
    workdir = root / "run"
    override = root / "override.yaml"
    override.write_text(yaml.safe_dump({**ONE_VARIANT, "resources": {"train_sad": TRAIN_SAD_OVERRIDE}}))
    configs = [*TINY_RUN, str(override)]
    began = time.monotonic()
    with SlurmCluster(root / "cluster") as cluster:
        runs = SimpleNamespace(cluster_start_s=cluster.started_in_s, workdir=workdir, configs=configs)
        runs.plan = snakemake(workdir, *PROFILE, *configs, "-n").stdout
        options = ["-d", str(workdir), *PROFILE, *TEST_CLUSTER]
        command = [*SNAKEMAKE, *options, *configs]
        runs.interrupted = _interrupt_after(command, fraction=1 / 3, timeout_s=1500)
        runs.jobs_after_interrupt = cluster.jobs()
        runs.missing = snakemake(workdir, *PROFILE, *configs, "-n").stdout
        runs.resumed = subprocess.run(command, capture_output=True, text=True, timeout=1800)
        runs.jobs_after_resume = cluster.jobs()
        runs.results = {name: (workdir / "results" / name).read_bytes() for name in COMPARED}
        runs.results["metrics.csv"] = (workdir / "results" / "metrics.csv").read_text()
        # A job that fails: metrics_table over a per-clip table with no rows (the rule's script names the file).
        broken = workdir / "results" / "demo" / "clips" / "full" / "subject1.csv"
        broken.write_text(broken.read_text().splitlines()[0] + "\n")
        runs.broken = broken
        runs.failed = subprocess.run(
            [*SNAKEMAKE, *options, "--forcerun", "metrics_table", "results/metrics.csv", *configs],
            capture_output=True,
            text=True,
            timeout=600,
        )
        runs.jobs_at_end = cluster.jobs()
    runs.leftover = cluster.leftover_pids()
    runs.cluster_stop_s = cluster.stopped_in_s
    TIMINGS.update(
        {"start the cluster": runs.cluster_start_s, "stop it": runs.cluster_stop_s, "run": time.monotonic() - began}
    )
    return runs


def _runs(jobs) -> list[list[dict]]:
    """SLURM jobs grouped by Snakemake run (the plugin names every job of a run after the run's uuid)."""
    by_run = {}
    for job in sorted(jobs, key=lambda job: int(job["JobId"])):
        by_run.setdefault(job["JobName"], []).append(job)
    return list(by_run.values())


def _state(job) -> str:
    return job["JobState"]


def test_the_tiny_dag_runs_through_the_profile_and_resumes_after_an_interrupt(slurm_runs):
    assert slurm_runs.interrupted.returncode != 0, "the interrupted run should not report success"
    assert 0 < slurm_runs.interrupted.done < slurm_runs.interrupted.total
    assert slurm_runs.resumed.returncode == 0, slurm_runs.resumed.stdout + slurm_runs.resumed.stderr
    assert "steps (100%) done" in slurm_runs.resumed.stdout + slurm_runs.resumed.stderr
    (first,) = _runs(slurm_runs.jobs_after_interrupt)
    still_queued = [job["Comment"] for job in first if _state(job) in {"PENDING", "RUNNING"}]
    assert not still_queued, f"Ctrl-C left the interrupted run's SLURM jobs {still_queued} in the queue"
    assert any(_state(job) == "CANCELLED" for job in first), "Ctrl-C cancelled no job"


def test_every_job_of_the_dag_ran_as_its_own_slurm_job(slurm_runs):
    expected = planned_jobs(slurm_runs.plan)
    expected.pop("all")  # the target rule runs nothing
    first, second = _runs(slurm_runs.jobs_after_resume)
    completed = [job["Comment"] for job in first + second if _state(job) == "COMPLETED"]
    assert len(completed) == len(set(completed)), "a finished job was submitted again"
    # Ctrl-C can cancel a job in the moment after its script wrote its outputs and before SLURM recorded it done
    # (seen on a loaded machine): its outputs are complete, so the resumed run rightly does not submit it again
    resubmitted = {job["Comment"] for job in second}
    done_when_cancelled = [
        job["Comment"] for job in first if _state(job) == "CANCELLED" and job["Comment"] not in resubmitted
    ]
    assert Counter(map(_rule_of, completed + done_when_cancelled)) == Counter(expected)


def test_the_resumed_run_submits_only_the_missing_jobs(slurm_runs):
    missing = planned_jobs(slurm_runs.missing)
    missing.pop("all", None)
    _, second = _runs(slurm_runs.jobs_after_resume)
    assert Counter(_rule_of(job["Comment"]) for job in second) == Counter(missing)
    total = sum(planned_jobs(slurm_runs.plan).values())
    assert sum(missing.values()) <= total - slurm_runs.interrupted.done, "finished jobs are planned again"


def _configured_resources(rule: str) -> dict:
    """What the config files ask for a rule: the schema's default entry, then tiny.yaml, tiny_decoding.yaml and the
    test's override, key by key (the dry run of a SLURM profile does not print threads, so the files are read)."""
    schema = yaml.safe_load((REPO / "schemas" / "config.schema.yaml").read_text())
    resources = dict(schema["properties"]["resources"]["properties"][rule]["default"])
    for layer in (TINY_CONFIG, DECODING_CONFIG):
        resources.update((yaml.safe_load(layer.read_text()).get("resources") or {}).get(rule, {}))
    if rule == "train_sad":
        resources.update(TRAIN_SAD_OVERRIDE)
    return resources


def test_each_job_gets_the_threads_memory_runtime_and_gpus_of_its_rule(slurm_runs):
    jobs = [job for run in _runs(slurm_runs.jobs_after_resume) for job in run]
    for job in jobs:
        rule = _rule_of(job["Comment"])
        wanted = _configured_resources(rule)
        granted = {
            "threads": int(job["NumCPUs"]),
            "mem_mb": int(job["MinMemoryNode"].removesuffix("M")),
            "runtime": _minutes(job["TimeLimit"]),
            "gpu": job.get("TresPerJob", "").count("gres:gpu:1"),  # --gpus=1 from `gpu: 1`
        }
        assert granted == wanted, rule
    # the override is partial: train_sad keeps the schema's threads and runtime, with the override's memory and GPU
    train_sad = [job for job in jobs if _rule_of(job["Comment"]) == "train_sad"]
    assert train_sad and all(
        job["MinMemoryNode"] == f"{TRAIN_SAD_OVERRIDE['mem_mb']}M" and job["TresPerJob"] == "gres:gpu:1"
        for job in train_sad
    )
    assert _configured_resources("train_sad")["threads"] == 1  # the rule's own default ($defs says 2), kept


def test_the_slurm_run_gives_the_outputs_of_a_local_run(slurm_runs, tiny_run):
    for name in COMPARED:
        assert slurm_runs.results[name] == (tiny_run / "results" / name).read_bytes(), f"results/{name} differs"
    # the table: the local run's rows of the variants the cluster ran, in the same order
    local = (tiny_run / "results" / "metrics.csv").read_text().splitlines()
    rows = [local[0]] + [row for row in local[1:] if row.split(",")[1] in {"full", "motion_frames"}]
    assert slurm_runs.results["metrics.csv"].splitlines() == rows


def test_a_failing_job_is_reported_failed_with_its_log(slurm_runs):
    output = slurm_runs.failed.stdout + slurm_runs.failed.stderr
    assert slurm_runs.failed.returncode != 0
    assert "Error in rule metrics_table" in output
    broken = slurm_runs.broken.relative_to(slurm_runs.workdir)  # the job runs in the working directory
    assert f"{broken}: no clips scored" in output, "the failed job's log is not shown"
    *_, failing = _runs(slurm_runs.jobs_at_end)
    assert failing and all(_state(job) == "FAILED" for job in failing)
    assert {_rule_of(job["Comment"]) for job in failing} == {"metrics_table"}


def test_the_cluster_leaves_no_process_behind(slurm_runs, tmp_path):
    assert slurm_runs.leftover == []
    with SlurmCluster(tmp_path / "cluster") as cluster:  # and with a job still running when it stops
        sleeper = ["sbatch", "--parsable", "-o", "/dev/null", "-t", "5", "--mem", "100", "--wrap", "sleep 300"]
        job = cluster.run(*sleeper).stdout.strip()
        deadline = time.monotonic() + 30
        while cluster.run("squeue", "-h", "-j", job, "-o", "%T").stdout.strip() != "RUNNING":
            assert time.monotonic() < deadline, "the sleep job never started"
            time.sleep(0.5)
    assert cluster.leftover_pids() == []
    assert not SYSTEM_CONF.is_symlink() and not SYSTEM_CONF.exists()


def test_a_job_process_that_left_its_job_does_not_outlive_the_cluster(tmp_path):
    """proctrack/linuxproc follows a job's process tree: a process that leaves it (started in its own session by a
    parent that exits, so init adopts it) escapes scancel. An orphaned job Snakemake was found alive, hung, after a
    suite's run; stopping the cluster finds such processes by the job id in their environment."""
    pid_file = tmp_path / "escaped.pid"
    escape = f"(setsid sh -c 'echo $$ > {pid_file}; exec sleep 300' &); sleep 300"
    with SlurmCluster(tmp_path / "cluster") as cluster:
        cluster.run("sbatch", "-o", "/dev/null", "-t", "5", "--mem", "100", "--wrap", escape)
        deadline = time.monotonic() + 30
        while not pid_file.exists() or not pid_file.read_text().strip():
            assert time.monotonic() < deadline, "the job never started its escaping process"
            time.sleep(0.5)
        escaped = int(pid_file.read_text())
        assert Path(f"/proc/{escaped}").exists()
    deadline = time.monotonic() + 5
    while Path(f"/proc/{escaped}").exists() and time.monotonic() < deadline:  # a killed process may linger a moment
        time.sleep(0.1)
    assert not Path(f"/proc/{escaped}").exists(), "a job's process outlived the cluster"
    assert cluster.leftover_pids() == []
