"""Atomic outputs: a reader sees the old result, the whole new one, or nothing."""

import os

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
    leftover = tmp_path / f".replaced-{os.getpid()}-model"  # a replace killed before it cleaned up
    leftover.mkdir()
    (leftover / "weights").write_text("older")
    with atomic_directory(target) as partial:
        partial.mkdir()
        (partial / "weights").write_text("new")
    assert os.listdir(tmp_path) == ["model"] and (target / "weights").read_text() == "new"
