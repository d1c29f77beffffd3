"""The previews of a render (rule preview_video): an mp4 per clip with the evaluation frames at the configured rate,
and a side-by-side sheet whose columns hold the right clip's frames at hand-worked frame indices. Frames are flat
colours, which H.264 keeps to within a few grey levels."""

import numpy as np
import pytest

from semvideo_core.data.video import read_mp4
from semvideo_core.io.clip_arrays import write_clip_array
from semvideo_core.stages.preview import preview_video

IDS = ["test1_1", "test1_2", "test1_3"]
TOLERANCE = 6  # grey levels: yuv420p and x264 at crf 18 on flat frames


def _flat(colours) -> np.ndarray:
    """[N, T, 3] colours -> uint8 [N, T, 16, 16, 3] frames of one colour each."""
    colours = np.asarray(colours, dtype=np.uint8)
    return np.broadcast_to(colours[:, :, None, None, :], (*colours.shape[:2], 16, 16, 3)).copy()


def _colour(clip: int, frame: int, column: int) -> list[int]:
    return [40 + 60 * clip, 30 + 25 * frame, 50 + 45 * column]


@pytest.fixture
def render(tmp_path):
    """A render of 3 clips (4 evaluation frames) with its inputs: 6 motion frames, an anchor, 6 true frames at 32 px."""
    video = _flat([[_colour(c, t, 3) for t in range(4)] for c in range(3)])
    motion = _flat([[_colour(c, t, 1) for t in range(6)] for c in range(3)])
    anchor = _flat([[_colour(c, 0, 2)] for c in range(3)])[:, 0]
    truth = np.repeat(np.repeat(_flat([[_colour(c, t, 0) for t in range(6)] for c in range(3)]), 2, 2), 2, 3)
    inputs = {name: tmp_path / f"{name}.h5" for name in ("video", "motion_frames", "anchor", "clips")}
    write_clip_array(inputs["video"], "frames", video, IDS)
    write_clip_array(inputs["motion_frames"], "frames", motion, IDS)
    write_clip_array(inputs["anchor"], "anchor", anchor, IDS)
    write_clip_array(inputs["clips"], "frames", truth, IDS)
    return inputs, {"mp4": tmp_path / "mp4", "sheet": tmp_path / "sheet.mp4"}


def test_preview_writes_an_mp4_per_clip_and_a_sheet_of_the_first_clips(render):
    inputs, out = render
    preview_video(inputs, {"fps": 5, "sheet_clips": 2}, out)
    assert sorted(path.name for path in out["mp4"].iterdir()) == [f"{clip}.mp4" for clip in IDS]
    for c, clip in enumerate(IDS):
        frames, fps = read_mp4(out["mp4"] / f"{clip}.mp4")
        assert fps == 5 and frames.shape == (4, 16, 16, 3)
        for t in range(4):
            assert np.abs(frames[t].astype(int) - _colour(c, t, 3)).max() <= TOLERANCE, (clip, t)
    sheet, fps = read_mp4(out["sheet"])
    assert fps == 5 and sheet.shape == (4, 2 * 16, 4 * 16, 3)  # 4 steps; 2 clips x (truth, motion, anchor, video)
    # Columns of 6 frames shown at 4 steps take frames round(linspace(0, 5, 4)) = 0, 2, 3, 5; the anchor is a still.
    shown = {0: [0, 2, 3, 5], 1: [0, 2, 3, 5], 2: [0, 0, 0, 0], 3: [0, 1, 2, 3]}
    for step in range(4):
        for c in range(2):
            for column, frames in shown.items():
                tile = sheet[step, 16 * c : 16 * (c + 1), 16 * column : 16 * (column + 1)].astype(int)
                expected = _colour(c, frames[step], column)
                assert np.abs(tile[2:-2, 2:-2] - expected).max() <= TOLERANCE, (step, c, column)


def test_a_clip_missing_from_an_input_names_the_file_and_writes_nothing(render, tmp_path):
    inputs, out = render
    write_clip_array(inputs["anchor"], "anchor", np.zeros((2, 16, 16, 3), np.uint8), ["test1_2", "test1_3"])
    with pytest.raises(ValueError, match=r"anchor\.h5: 1 clips are missing from anchor"):
        preview_video(inputs, {"fps": 3, "sheet_clips": 2}, out)
    assert not out["mp4"].exists() and not out["sheet"].exists()


def test_a_sheet_that_cannot_be_written_leaves_no_mp4s(render, tmp_path):
    inputs, out = render
    (tmp_path / "not_a_folder").write_text("")
    with pytest.raises(OSError):
        preview_video(inputs, {"fps": 3, "sheet_clips": 2}, {**out, "sheet": tmp_path / "not_a_folder" / "sheet.mp4"})
    assert not out["mp4"].exists() and not list(tmp_path.glob(".partial-*"))
