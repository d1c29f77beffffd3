"""Cut the stimulus movies into the 2-s clips the fMRI volumes see, and sample frames from each clip.

A movie is cut on the windows `[2j, 2j + 2)` s (j = 0-based clip index). Two frame-sampling protocols of peer work:

    3fps6    6 frames at 3 fps: times 2j + k/3 s, k = 0..5      (30 fps: frame indices 60j + 10k)
    every8   every 8th frame, 8 frames: round(2j * fps) + 8k    (30 fps: frame indices 60j + 8k, 0..56 in the clip)

Frames are read with decord (random access to just the needed frames) or, where decord is missing, PyAV (sequential
decoding that keeps the needed frames), centre-cropped to a square and resized. `extract_clips` writes every clip of
every movie into one HDF5 file:

    frames    uint8 [N, T, size, size, 3]   RGB, one chunk per clip
    clip_id   str [N]                       `{run}_{j+1}`, as `cc2017_layout.clip_id` names clips
"""

from __future__ import annotations

import importlib.util
import json
import logging
import sys
from abc import ABC, abstractmethod
from pathlib import Path

import av
import h5py
import numpy as np
from tqdm import tqdm

from ..io.atomic import atomic_output
from ..io.clip_ids import clip_id
from .video import resize_frames

log = logging.getLogger(__name__)

PROTOCOLS = ("3fps6", "every8", "every3")
BACKENDS = ("auto", "decord", "pyav")
FRAMES_PER_CLIP = {"3fps6": 6, "every8": 8, "every3": 8}
FRAME_STEP = {"every8": 8, "every3": 3}  # every Nth frame from the clip start
SAMPLING_RATE_3FPS6 = 3.0  # frames per second of the 3fps6 protocol
ROUNDING_EPSILON = 1e-6  # frames; keeps exact products such as (2j + k/3) * 30 from rounding the wrong way


def clip_frame_indices(protocol: str, clip_index: int, fps: float, clip_seconds: float = 2.0) -> np.ndarray:
    """0-based frame indices (int64) [T] of one clip, computed from timestamps (start = clip_index * clip_seconds).

    3fps6: frames at start + k/3 s, k = 0..5, each rounded to the nearest frame; every8 / every3: the frame nearest
    the clip start, then every 8th / 3rd frame, 8 frames. (every8 is defined on 2-s clips of 30-fps movies, every3 on
    the 1-s clips of the 24-fps HCP movies; elsewhere their 8 frames may overrun the clip.)
    """
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown frame-sampling protocol {protocol!r}; expected one of {PROTOCOLS}")
    if clip_index < 0 or fps <= 0 or clip_seconds <= 0:
        raise ValueError(f"need clip_index >= 0, fps > 0 and clip_seconds > 0, got {clip_index}, {fps}, {clip_seconds}")
    start = clip_index * clip_seconds
    if protocol == "3fps6":
        times = start + np.arange(FRAMES_PER_CLIP[protocol]) / SAMPLING_RATE_3FPS6  # [6] s
        return _nearest_frame(times * fps)
    first = _nearest_frame(np.array([start * fps]))[0]
    return first + FRAME_STEP[protocol] * np.arange(FRAMES_PER_CLIP[protocol], dtype=np.int64)


def _nearest_frame(positions: np.ndarray) -> np.ndarray:
    """Round frame positions half up (not to even, so that the result never depends on the parity of a frame)."""
    return np.floor(positions + 0.5 + ROUNDING_EPSILON).astype(np.int64)


class VideoFrames(ABC):
    """A decoded video, read by frame index. Use as a context manager, or call `close`."""

    backend: str  # "decord" or "pyav"
    path: Path
    fps: float
    n_frames: int
    width: int
    height: int

    @abstractmethod
    def get(self, indices: np.ndarray) -> np.ndarray:
        """Frames at the 0-based `indices` (any order, repeats allowed): [n, height, width, 3] uint8 RGB."""

    @abstractmethod
    def close(self) -> None:
        """Release the decoder."""

    def _check_indices(self, indices: np.ndarray) -> np.ndarray:
        indices = np.asarray(indices, dtype=np.int64).reshape(-1)
        outside = indices[(indices < 0) | (indices >= self.n_frames)]
        if outside.size:
            raise IndexError(f"{self.path}: frame indices {outside.tolist()} outside its {self.n_frames} frames")
        return indices

    def __enter__(self) -> VideoFrames:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.close()


class _DecordFrames(VideoFrames):
    """Random access with decord: only the key frames before the requested frames and those frames are decoded."""

    backend = "decord"

    def __init__(self, path: Path):
        import decord

        self.path, self._decord_errors = path, (RuntimeError, decord.DECORDError)
        # A bad file gives a bare RuntimeError ("Error reading ..."), one without frames an AssertionError.
        try:
            self._reader = decord.VideoReader(str(path), ctx=decord.cpu(0))
        except (*self._decord_errors, AssertionError) as error:
            raise ValueError(f"{path}: cannot be opened as a video by decord ({error})") from None
        self.fps, self.n_frames = float(self._reader.get_avg_fps()), len(self._reader)
        if self.fps <= 0:
            raise ValueError(f"{path}: decord reads a frame rate of {self.fps} fps")
        self.height, self.width = self.get(np.array([0]))[0].shape[:2]  # decord reports no frame size

    def get(self, indices: np.ndarray) -> np.ndarray:
        indices = self._check_indices(indices)
        try:
            # asnumpy: get_batch returns a decord NDArray under decord's default ("native") bridge.
            return self._reader.get_batch(indices.tolist()).asnumpy()  # [n, H, W, 3] uint8 RGB
        except self._decord_errors as error:
            raise ValueError(f"{self.path}: decord failed to decode frames {indices.tolist()} ({error})") from None

    def close(self) -> None:
        self._reader = None  # decord has no close(): dropping the reader frees the decoder


class _PyAVFrames(VideoFrames):
    """Sequential decoding with PyAV that keeps only the requested frames.

    The decoder carries on from where the previous `get` stopped, so reading the clips of a movie in order decodes it
    once; a request for an earlier frame reopens the file and starts again from the first frame.
    """

    backend = "pyav"

    def __init__(self, path: Path):
        self.path = path
        self._open()
        stream = self._stream
        rate = stream.average_rate or stream.guessed_rate
        self.fps = float(rate) if rate else 0.0
        self.width, self.height = stream.codec_context.width, stream.codec_context.height
        # The container's frame count; failing that, its duration (some containers do not store the count).
        duration = float(stream.duration * stream.time_base) if stream.duration else 0.0
        self.n_frames = stream.frames or round(duration * self.fps)
        if self.n_frames == 0 or self.fps <= 0:
            self.close()
            raise ValueError(f"{path}: no video frames (PyAV reads {self.n_frames} frames at {self.fps} fps)")

    def _open(self) -> None:
        try:
            self._container = av.open(str(self.path))
        except av.error.FFmpegError as error:
            raise ValueError(f"{self.path}: cannot be opened as a video by PyAV ({error})") from None
        if not self._container.streams.video:
            self._container.close()
            raise ValueError(f"{self.path}: has no video stream")
        self._stream = self._container.streams.video[0]
        self._stream.thread_type = "AUTO"  # frame-threaded decoding: same frames, faster
        self._decoded = self._container.decode(self._stream)
        self._next_index = 0  # index of the frame the decoder gives next

    def get(self, indices: np.ndarray) -> np.ndarray:
        indices = self._check_indices(indices)
        if indices.size and indices.min() < self._next_index:
            self.close()
            self._open()
        wanted, kept = set(indices.tolist()), {}
        try:
            while len(kept) < len(wanted):
                frame = next(self._decoded, None)
                if frame is None:
                    missing = sorted(wanted - kept.keys())
                    raise ValueError(f"{self.path}: frames {missing} requested, the video ends at {self._next_index}")
                if self._next_index in wanted:
                    kept[self._next_index] = frame.to_ndarray(format="rgb24")  # [H, W, 3] uint8
                self._next_index += 1
        except av.error.FFmpegError as error:
            raise ValueError(f"{self.path}: PyAV failed to decode frame {self._next_index} ({error})") from None
        return np.stack([kept[i] for i in indices.tolist()])  # [n, H, W, 3]

    def close(self) -> None:
        self._container.close()


def open_video(path: str | Path, backend: str = "auto") -> VideoFrames:
    """Open a video for reading by frame index with 'decord', 'pyav', or 'auto' (decord if importable, else PyAV)."""
    path = Path(path)
    resolved = _resolve_backend(backend)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: video file not found")
    if resolved == "pyav":
        return _PyAVFrames(path)
    try:
        return _DecordFrames(path)
    except ValueError as error:
        if backend != "auto":
            raise
        # decord 0.6 cannot decode some files PyAV reads (e.g. frame widths that are not a multiple of 32).
        log.warning("%s; reading it with PyAV instead", error)
        return _PyAVFrames(path)


def _resolve_backend(backend: str) -> str:
    if backend not in BACKENDS:
        raise ValueError(f"unknown video backend {backend!r}; expected one of {BACKENDS}")
    if backend != "auto":
        return backend
    return "decord" if importlib.util.find_spec("decord") is not None else "pyav"


def center_crop_resize(frames: np.ndarray, size: int) -> np.ndarray:
    """[n, H, W, 3] uint8 -> [n, size, size, 3] uint8: the centre square (side min(H, W)), resized to `size`."""
    _check_size(size)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"expected uint8 frames [n, H, W, 3], got {frames.dtype} {frames.shape}")
    height, width = frames.shape[1:3]
    side = min(height, width)
    top, left = (height - side) // 2, (width - side) // 2
    square = frames[:, top : top + side, left : left + side]  # [n, side, side, 3]
    return resize_frames(np.ascontiguousarray(square), size)


def _check_size(size: int) -> None:
    if size < 16 or size % 2:
        raise ValueError(f"frame size must be an even number of pixels >= 16, got {size}")


def extract_clips(
    runs: list[tuple[str, Path]],
    clips_per_run: int,
    out_path: str | Path,
    protocol: str = "3fps6",
    size: int = 256,
    clip_seconds: float = 2.0,
    backend: str = "auto",
    compression: str | None = "lzf",
    windows: dict[str, list[tuple[str, int]]] | None = None,
) -> int:
    """Write every clip of every (run name, movie path) into one HDF5 file at `out_path`; return the clip count.

    By default a run's clips are its first `clips_per_run` windows, named `{run}_{j+1}`. `windows` instead lists,
    per run, (clip id, window index j) pairs: the clip [j * clip_seconds, (j + 1) * clip_seconds) of that movie
    (HCP clips come from a timing file, between rest blocks). Every movie is checked before anything is written;
    the file is written atomically, so an error leaves no file.
    """
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown frame-sampling protocol {protocol!r}; expected one of {PROTOCOLS}")
    _check_size(size)
    if clips_per_run < 1:
        raise ValueError(f"clips_per_run must be >= 1, got {clips_per_run}")
    names = [name for name, _ in runs]
    if not runs or len(set(names)) != len(names):
        raise ValueError(f"need at least one run and unique run names (clip ids derive from them), got {names}")
    if windows is None:  # as cc2017_layout.clip_id names them
        windows = {name: [(clip_id(name, j), j) for j in range(clips_per_run)] for name in names}
    _resolve_backend(backend)  # an unknown name fails here, before any movie is opened
    fps = {
        name: _check_movie(Path(path), max(j for _, j in windows[name]) + 1, protocol, clip_seconds, backend)
        for name, path in runs
    }

    n_clips, n_frames = sum(len(windows[name]) for name in names), FRAMES_PER_CLIP[protocol]
    clip_ids = [clip_id for name in names for clip_id, _ in windows[name]]
    if len(set(clip_ids)) != len(clip_ids):
        raise ValueError("clip ids must be unique")
    with atomic_output(out_path) as tmp, h5py.File(tmp, "w") as h5:
        frames = h5.create_dataset(
            "frames",
            shape=(n_clips, n_frames, size, size, 3),
            dtype=np.uint8,
            chunks=(1, n_frames, size, size, 3),  # one clip per chunk: readers take whole clips
            compression=compression,
        )
        h5.create_dataset("clip_id", data=clip_ids, dtype=h5py.string_dtype("utf-8"))
        h5.attrs.update(
            protocol=protocol,
            size=size,
            clip_seconds=clip_seconds,
            clips_per_run=clips_per_run,
            backend=backend,  # as asked; "backends" records what read each movie
            fps=json.dumps(fps),
            sources=json.dumps({name: str(path) for name, path in runs}),
        )
        with tqdm(total=n_clips, desc=f"clips ({protocol}, {size}px)", unit="clip", file=sys.stderr) as progress:
            row, used = 0, {}
            for name, path in runs:
                with open_video(path, backend) as video:
                    used[name] = video.backend
                    for _, j in windows[name]:
                        indices = clip_frame_indices(protocol, j, fps[name], clip_seconds)  # [T]
                        frames[row] = center_crop_resize(video.get(indices), size)  # [T, size, size, 3]
                        row += 1
                        progress.update()
        h5.attrs["backends"] = json.dumps(used)
    return n_clips


def _check_movie(path: Path, clips_per_run: int, protocol: str, clip_seconds: float, backend: str) -> float:
    """Check that a movie opens and holds every frame the clips need; return its frame rate."""
    with open_video(path, backend) as video:
        last_needed = int(clip_frame_indices(protocol, clips_per_run - 1, video.fps, clip_seconds).max())
        # The movie must cover every clip window (one frame of slack for rounding), not only the sampled frames.
        covered = int(np.floor(clips_per_run * clip_seconds * video.fps)) - 1
        if video.n_frames <= last_needed or video.n_frames < covered:
            raise ValueError(
                f"{path}: the movie lasts {video.n_frames / video.fps:.2f} s ({video.n_frames} frames at "
                f"{video.fps:g} fps), but the fMRI needs {clips_per_run * clip_seconds:.2f} s ({clips_per_run} clips "
                f"of {clip_seconds:g} s; protocol {protocol} reads up to frame {last_needed})"
            )
        return video.fps
