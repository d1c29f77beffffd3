"""Atomic outputs: a reader sees the old result, the whole new one, or nothing."""

import os
import signal
import socket
import subprocess
import sys

import pytest

from semvideo_core.io.atomic import atomic_directory, atomic_output


def test_atomic_output_leaves_nothing_on_error(tmp_path):
    target = tmp_path / "out.csv"
    with pytest.raises(RuntimeError):
        with atomic_output(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("interrupted")
    assert list(tmp_path.iterdir()) == []
    with atomic_output(target) as tmp:
        tmp.write_text("whole")
    assert target.read_text() == "whole" and list(tmp_path.iterdir()) == [target]


def test_atomic_directory_leaves_nothing_on_error_and_keeps_the_old_folder(tmp_path):
    target = tmp_path / "model"
    target.mkdir()
    (target / "weights").write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_directory(target) as partial:
            partial.mkdir()
            (partial / "weights").write_text("half")
            raise RuntimeError("interrupted")
    assert os.listdir(tmp_path) == ["model"] and os.listdir(target) == ["weights"]
    assert (target / "weights").read_text() == "old"


def test_atomic_directory_replaces_a_folder_from_an_earlier_run(tmp_path):
    target = tmp_path / "mp4"
    target.mkdir()
    (target / "stale.mp4").write_text("from an earlier run")
    with atomic_directory(target) as partial:
        partial.mkdir()
        (partial / "clip.mp4").write_text("new")
    assert os.listdir(tmp_path) == ["mp4"] and os.listdir(target) == ["clip.mp4"]


def test_a_cache_folder_made_meanwhile_by_another_process_wins(tmp_path):
    target = tmp_path / "tiny_clip"
    with atomic_directory(target, keep_existing=True) as partial:
        partial.mkdir()
        (partial / "config.json").write_text("ours")
        target.mkdir()  # another job finished the same cache first
        (target / "config.json").write_text("theirs")
    assert os.listdir(tmp_path) == ["tiny_clip"] and (target / "config.json").read_text() == "theirs"


def test_atomic_directory_does_not_hide_a_file_in_the_way(tmp_path):
    target = tmp_path / "model"
    target.write_text("a file, not a folder")
    with pytest.raises(NotADirectoryError):
        with atomic_directory(target) as partial:
            partial.mkdir()
    assert os.listdir(tmp_path) == ["model"]


def test_a_leftover_from_a_killed_replace_does_not_stop_the_next(tmp_path):
    target = tmp_path / "model"
    target.mkdir()
    (target / "weights").write_text("old")
    leftover = tmp_path / f".replaced-{os.getpid()}@{socket.gethostname()}@model"  # a replace killed mid-way
    leftover.mkdir()
    (leftover / "weights").write_text("older")
    with atomic_directory(target) as partial:
        partial.mkdir()
        (partial / "weights").write_text("new")
    assert os.listdir(tmp_path) == ["model"] and (target / "weights").read_text() == "new"


def _killed_writer(code: str) -> None:
    """Run `code` (which kills itself mid-write) in a fresh interpreter, as a job killed at its time limit."""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == -signal.SIGKILL, result.stderr


def test_the_next_writer_removes_what_a_killed_writer_left(tmp_path):
    target, folder = tmp_path / "fmri.h5", tmp_path / "vae"
    _killed_writer(
        "import os, signal\n"
        "from semvideo_core.io.atomic import atomic_output\n"
        f"with atomic_output({str(target)!r}) as tmp:\n"
        "    tmp.write_bytes(bytes(1000))\n"
        "    os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    _killed_writer(
        "import os, signal\n"
        "from semvideo_core.io.atomic import atomic_directory\n"
        f"with atomic_directory({str(folder)!r}) as partial:\n"
        "    partial.mkdir()\n"
        "    (partial / 'weights').write_text('half')\n"
        "    os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    assert len(os.listdir(tmp_path)) == 2 and not target.exists() and not folder.exists()
    with atomic_output(target) as tmp:
        tmp.write_text("whole")
    with atomic_directory(folder) as partial:
        partial.mkdir()
    assert sorted(os.listdir(tmp_path)) == ["fmri.h5", "vae"]


def _dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_leftovers_of_running_writers_other_hosts_and_other_files_stay(tmp_path):
    host, dead = socket.gethostname(), _dead_pid()
    kept = [
        f".partial-{os.getppid()}@{host}@out.csv",  # a live process (pytest's parent) still writing it
        f".partial-{dead}@not-{host}@out.csv",  # another node of a shared filesystem: cannot be judged here
        f".partial-{dead}@{host}@other.csv",  # another file
        f".partial-{dead}@{host}@1-out.csv",  # another file whose name ends like this one's
    ]
    for name in kept:
        (tmp_path / name).write_text("")
    removed = tmp_path / f".replaced-{dead}@{host}@out.csv"  # a folder a killed writer was replacing
    removed.mkdir()
    (removed / "weights").write_text("")
    with atomic_output(tmp_path / "out.csv") as tmp:
        tmp.write_text("whole")
    assert sorted(os.listdir(tmp_path)) == sorted(kept + ["out.csv"])


def test_a_job_stopped_with_sigterm_removes_its_temporary(tmp_path):
    """SLURM stops a job at its time limit (and scancel a job) with SIGTERM; within log_to_file, which every
    workflow script enters, the job's cleanup still runs."""
    target, log = tmp_path / "fmri.h5", tmp_path / "job.log"
    code = (
        "import time\n"
        "from semvideo_core.io.atomic import atomic_output\n"
        "from semvideo_core.logs import log_to_file\n"
        f"with log_to_file({str(log)!r}), atomic_output({str(target)!r}) as tmp:\n"
        "    tmp.write_bytes(bytes(1000))\n"
        "    print('writing', flush=True)\n"
        "    time.sleep(60)\n"
    )
    job = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert job.stdout.readline() == "writing\n"
    job.send_signal(signal.SIGTERM)
    assert job.wait(timeout=30) == 128 + signal.SIGTERM
    assert os.listdir(tmp_path) == ["job.log"]
    assert "job failed" in log.read_text()
