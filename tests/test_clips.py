"""Clip extraction: frame indices of the sampling protocols, both video backends, centre crop, the HDF5 file, errors."""

import json

import h5py
import numpy as np
import pytest

from semvideo_core.data import clips
from semvideo_core.data.clips import (
    PROTOCOLS,
    center_crop_resize,
    clip_frame_indices,
    extract_clips,
    open_video,
)
from semvideo_core.data.video import Mp4Writer

BACKENDS = ("decord", "pyav")
FPS = 30
SIDE = 64  # coded test movies are SIDE x SIDE
CODE_ROWS, CODE_COLS = 2, 4  # 8 bits: frame indices 0..255
ON, OFF = np.array([230, 180, 60]), np.array([30, 60, 120])  # bit colours; red channel tells them apart
SECOND_MOVIE_OFFSET = 120  # the second movie's frames encode index + 120, so the two movies cannot be confused


def coded_frame(code: int, side: int = SIDE) -> np.ndarray:
    """[side, side, 3] uint8: `code` as 8 flat blocks (bit b at row b // 4, column b % 4), plus a soft ramp so the
    content is not trivially flat. Blocks of 16+ pixels survive H.264 and a 2x downscale."""
    ramp = np.linspace(-20, 20, side)[None, :, None]  # [1, side, 1]
    frame = np.empty((side, side, 3))
    bh, bw = side // CODE_ROWS, side // CODE_COLS
    for bit in range(CODE_ROWS * CODE_COLS):
        row, col = divmod(bit, CODE_COLS)
        frame[row * bh : (row + 1) * bh, col * bw : (col + 1) * bw] = ON if (code >> bit) & 1 else OFF
    return np.clip(frame + ramp, 0, 255).astype(np.uint8)


def coded_movie(codes) -> np.ndarray:
    """[n, SIDE, SIDE, 3]: one coded frame per code."""
    return np.stack([coded_frame(code) for code in codes])


def read_codes(frames: np.ndarray) -> list[int]:
    """Inverse of coded_frame for [n, S, S, 3] frames of any side S: read the centre half of each block."""
    side = frames.shape[1]
    bh, bw = side // CODE_ROWS, side // CODE_COLS
    codes = []
    for frame in frames:
        code = 0
        for bit in range(CODE_ROWS * CODE_COLS):
            row, col = divmod(bit, CODE_COLS)
            block = frame[row * bh + bh // 4 : (row + 1) * bh - bh // 4, col * bw + bw // 4 : (col + 1) * bw - bw // 4]
            code |= int(block[..., 0].mean() > 128) << bit
        codes.append(code)
    return codes


def wide_frame(width: int = 96, height: int = 64) -> np.ndarray:
    """[height, width, 3]: red left margin, blue right margin, gray centre square with a white square in its middle."""
    side = min(width, height)
    margin = (width - side) // 2
    frame = np.full((height, width, 3), 128, np.uint8)
    frame[:, :margin] = (255, 0, 0)
    frame[:, width - margin :] = (0, 0, 255)
    centre_y, centre_x, half = height // 2, width // 2, side // 8
    frame[centre_y - half : centre_y + half, centre_x - half : centre_x + half] = 255
    return frame


def write_movie(path, frames, size=SIDE):
    with Mp4Writer(path, FPS, size, crf=18) as writer:
        writer.write(frames)
    return path


@pytest.fixture(scope="module")
def movies(tmp_path_factory):
    """Test movies at 30 fps: 'long' (200 frames, 3 clips), 'second' (130 frames coding index + 120, 2 clips),
    'short' (90 frames: 1 clip, not 2), 'wide' (96 x 64, 70 frames)."""
    root = tmp_path_factory.mktemp("movies")
    return {
        "long": write_movie(root / "long.mp4", coded_movie(range(200))),
        "second": write_movie(root / "second.mp4", coded_movie(range(SECOND_MOVIE_OFFSET, SECOND_MOVIE_OFFSET + 130))),
        "short": write_movie(root / "short.mp4", coded_movie(range(90))),
        "wide": write_movie(root / "wide.mp4", np.repeat(wide_frame()[None], 70, axis=0), size=(96, 64)),
    }


def assert_folder_empty(folder):
    """No output and no temporary file left behind."""
    assert not folder.exists() or sorted(p.name for p in folder.iterdir()) == []


# --- frame indices -----------------------------------------------------------------------------------------------


def test_frame_indices_at_30_fps_follow_the_protocols():
    for j in range(240):  # an 8-min movie
        sampled = clip_frame_indices("3fps6", j, 30.0)
        assert sampled.dtype == np.int64
        np.testing.assert_array_equal(sampled, 60 * j + 10 * np.arange(6))
        np.testing.assert_array_equal(clip_frame_indices("every8", j, 30.0), 60 * j + 8 * np.arange(8))


@pytest.mark.parametrize("fps", [23.976, 24.0, 25.0, 29.97, 30000 / 1001, 59.94, 60.0])
def test_frame_indices_lie_within_half_a_frame_of_their_timestamps(fps):
    tolerance = 0.5 / fps + 1e-9
    for j in range(240):
        times = 2 * j + np.arange(6) / 3
        assert np.all(np.abs(clip_frame_indices("3fps6", j, fps) / fps - times) <= tolerance)
        every8 = clip_frame_indices("every8", j, fps)
        assert abs(every8[0] / fps - 2 * j) <= tolerance
        np.testing.assert_array_equal(np.diff(every8), 8)


def test_frame_indices_follow_the_clip_length():
    np.testing.assert_array_equal(clip_frame_indices("3fps6", 3, 30.0, clip_seconds=1.0), 90 + 10 * np.arange(6))


def test_unknown_protocol_lists_the_known_ones():
    with pytest.raises(ValueError, match="3fps6.*every8"):
        clip_frame_indices("4fps8", 0, 30.0)


# --- reading frames ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_backends_return_the_frames_at_the_clip_indices(movies, backend, protocol):
    with open_video(movies["long"], backend) as video:
        assert (video.backend, video.fps, video.n_frames, video.width, video.height) == (backend, FPS, 200, SIDE, SIDE)
        # Clip 2 before clip 0: the PyAV reader has to start again from the first frame.
        for j in (1, 2, 0):
            indices = clip_frame_indices(protocol, j, video.fps)
            frames = video.get(indices)
            assert frames.shape == (len(indices), SIDE, SIDE, 3) and frames.dtype == np.uint8
            assert read_codes(frames) == indices.tolist()


@pytest.mark.parametrize("backend", BACKENDS)
def test_any_order_and_repeats(movies, backend):
    with open_video(movies["long"], backend) as video:
        indices = np.array([57, 3, 57, 199, 0])
        assert read_codes(video.get(indices)) == indices.tolist()
        with pytest.raises(IndexError, match="long.mp4"):
            video.get(np.array([200]))


def test_decord_and_pyav_decode_the_same_frames(movies):
    indices = np.concatenate([clip_frame_indices(protocol, j, FPS) for protocol in PROTOCOLS for j in range(3)])
    with open_video(movies["long"], "decord") as video:
        from_decord = video.get(indices).astype(np.float64)
    with open_video(movies["long"], "pyav") as video:
        from_pyav = video.get(indices).astype(np.float64)
    assert np.abs(from_decord - from_pyav).mean() <= 1.0


def test_auto_prefers_decord(movies):
    with open_video(movies["long"]) as video:
        assert video.backend == "decord"


def test_unknown_backend():
    with pytest.raises(ValueError, match="decord.*pyav"):
        open_video("whatever.mp4", "opencv")


# --- centre crop -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
def test_centre_crop_of_a_wide_movie_keeps_the_centre(movies, backend):
    with open_video(movies["wide"], backend) as video:
        assert (video.width, video.height) == (96, 64)
        frames = center_crop_resize(video.get(np.array([0, 35])), 32).astype(int)  # [2, 32, 32, 3]
    assert frames.shape == (2, 32, 32, 3)
    # No red or blue margin survives anywhere, the white square sits in the middle, gray around it.
    assert np.abs(frames[..., 0] - frames[..., 2]).max() < 40
    assert frames[:, 12:20, 12:20].min() > 200
    for border in (frames[:, :6], frames[:, -6:], frames[:, :, :6], frames[:, :, -6:]):
        assert np.abs(border - 128).max() < 30


@pytest.mark.parametrize("height, width, size", [(64, 96, 32), (96, 64, 32), (64, 96, 128), (48, 48, 48)])
def test_centre_crop_of_arrays_either_way_round(height, width, size):
    frame = wide_frame(width=max(height, width), height=min(height, width))
    if height > width:  # a tall source: the same picture turned a quarter
        frame = np.ascontiguousarray(frame.transpose(1, 0, 2))
    out = center_crop_resize(np.stack([frame, frame]), size)
    assert out.shape == (2, size, size, 3) and out.dtype == np.uint8
    out = out.astype(int)
    assert np.abs(out[..., 0] - out[..., 2]).max() < 40  # margins gone
    middle = slice(size // 2 - size // 16, size // 2 + size // 16)
    assert out[:, middle, middle].min() > 200


def test_crop_rejects_bad_sizes_and_shapes():
    frames = np.zeros((1, 32, 32, 3), np.uint8)
    for size in (15, 8, 33):
        with pytest.raises(ValueError, match="even"):
            center_crop_resize(frames, size)
    with pytest.raises(ValueError, match="uint8"):
        center_crop_resize(frames.astype(np.float32), 16)


# --- the HDF5 file -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "protocol, backend, compression", [("3fps6", "decord", "lzf"), ("every8", "pyav", None), ("every8", "auto", "gzip")]
)
def test_extract_clips_writes_every_clip(movies, tmp_path, protocol, backend, compression):
    out = tmp_path / "out" / "clips.h5"
    runs = [("seg1", movies["long"]), ("test1", movies["second"])]
    assert extract_clips(runs, 2, out, protocol=protocol, size=32, backend=backend, compression=compression) == 4
    assert sorted(p.name for p in out.parent.iterdir()) == ["clips.h5"]
    n_frames = 6 if protocol == "3fps6" else 8
    with h5py.File(out, "r") as h5:
        frames = h5["frames"]
        assert frames.shape == (4, n_frames, 32, 32, 3) and frames.dtype == np.uint8
        assert frames.chunks == (1, n_frames, 32, 32, 3)
        assert frames.compression == compression
        assert [s.decode() for s in h5["clip_id"][:]] == ["seg1_1", "seg1_2", "test1_1", "test1_2"]
        assert h5["clip_id"].dtype.metadata["vlen"] is str
        attrs = dict(h5.attrs)
        # The frames are those of the protocol's indices, movie by movie.
        for row, (offset, j) in enumerate([(0, 0), (0, 1), (SECOND_MOVIE_OFFSET, 0), (SECOND_MOVIE_OFFSET, 1)]):
            assert read_codes(frames[row]) == (clip_frame_indices(protocol, j, FPS) + offset).tolist()
    assert attrs["protocol"] == protocol and attrs["size"] == 32 and attrs["clip_seconds"] == 2.0
    assert attrs["backend"] == backend  # as asked
    assert set(json.loads(attrs["backends"]).values()) == {"decord" if backend == "auto" else backend}
    assert json.loads(attrs["fps"]) == {"seg1": FPS, "test1": FPS}
    assert json.loads(attrs["sources"]) == {"seg1": str(movies["long"]), "test1": str(movies["second"])}


# --- errors ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
def test_missing_movie(movies, tmp_path, backend):
    missing = tmp_path / "stimuli" / "seg2.mp4"
    out_dir = tmp_path / "out"
    with pytest.raises(FileNotFoundError, match=str(missing)):
        extract_clips([("seg1", movies["long"]), ("seg2", missing)], 2, out_dir / "clips.h5", size=32, backend=backend)
    assert_folder_empty(out_dir)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("damage", ["truncated", "random"])
def test_corrupt_movie(movies, tmp_path, backend, damage):
    bad = tmp_path / "seg2.mp4"
    good = movies["long"].read_bytes()
    bad.write_bytes(good[:200] if damage == "truncated" else np.random.default_rng(0).bytes(len(good)))
    out_dir = tmp_path / "out"
    with pytest.raises(ValueError, match=str(bad)):
        extract_clips([("seg1", movies["long"]), ("seg2", bad)], 2, out_dir / "clips.h5", size=32, backend=backend)
    assert_folder_empty(out_dir)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_movie_shorter_than_the_fmri(movies, tmp_path, backend, protocol):
    out_dir = tmp_path / "out"
    with pytest.raises(ValueError, match=str(movies["short"])) as error:
        extract_clips([("seg1", movies["short"])], 2, out_dir / "clips.h5", protocol=protocol, size=32, backend=backend)
    assert "3.00 s" in str(error.value) and "4.00 s" in str(error.value)  # its duration and the one needed
    assert_folder_empty(out_dir)
    # One clip fits in 3 s.
    assert extract_clips([("seg1", movies["short"])], 1, out_dir / "clips.h5", protocol=protocol, size=32) == 1


def test_error_midway_leaves_no_file(movies, tmp_path, monkeypatch):
    calls = []

    def failing_crop(frames, size):
        calls.append(size)
        if len(calls) == 3:
            raise RuntimeError("disk on fire")
        return center_crop_resize(frames, size)

    monkeypatch.setattr(clips, "center_crop_resize", failing_crop)
    out_dir = tmp_path / "out"
    with pytest.raises(RuntimeError, match="disk on fire"):
        extract_clips([("seg1", movies["long"])], 3, out_dir / "clips.h5", size=32)
    assert len(calls) == 3
    assert_folder_empty(out_dir)


def test_auto_backend_falls_back_to_pyav_where_decord_cannot_decode(tmp_path):
    # decord 0.6 fails on frames whose width is not a multiple of 32; PyAV reads them.
    path = tmp_path / "narrow.mp4"
    with Mp4Writer(path, fps=24, size=(48, 32)) as writer:
        writer.write(np.full((10, 32, 48, 3), 120, dtype=np.uint8))
    with pytest.raises(ValueError, match="narrow.mp4"):
        open_video(path, "decord")
    with open_video(path, "auto") as video:
        assert video.backend == "pyav" and video.get(np.array([3])).shape == (1, 32, 48, 3)
