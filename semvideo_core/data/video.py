"""Video files: H.264 mp4 written and decoded with PyAV; frame arrays resized with OpenCV."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

from ..io.atomic import atomic_output

# At 32 px (16-px chroma rows) x264's SIMD code gave different bytes for identical input from run to run, as if it
# read uninitialised memory past the rows; its C code (asm=0) did not. From 64 px on, SIMD output was reproducible
# (20 encodings each at 64 and 128 px, three generations of the default 128-px world), and asm=0 made the default
# world 60% slower to write, so only narrower frames are encoded without SIMD.
SIMD_SAFE_PX = 64


class Mp4Writer:
    """Streams RGB frames into an H.264 mp4 (yuv420p), written atomically: the file appears only once closed.

    The same frames always give the same bytes: encoding runs on one thread (without x264's SIMD code below
    SIMD_SAFE_PX), every frame carries its own timestamp, and RGB is converted to yuv420p explicitly before the
    encoder sees it (left to the encoder, PyAV's implicit conversion gave different pixels from run to run).
    """

    def __init__(self, path: str | Path, fps: int, size: int | tuple[int, int], crf: int = 18, preset: str = "fast"):
        """size: the side of square frames, or (width, height); both even (yuv420p halves the chroma planes)."""
        self.path, self.fps, self.size = Path(path), fps, size
        self.width, self.height = (size, size) if isinstance(size, int) else size
        self._atomic = atomic_output(self.path)
        self._tmp = self._atomic.__enter__()
        try:
            self._container = av.open(str(self._tmp), mode="w", format="mp4")
            self._stream = self._container.add_stream("libx264", rate=Fraction(fps))
            self._stream.width, self._stream.height = self.width, self.height
            self._stream.pix_fmt = "yuv420p"
            self._stream.codec_context.thread_count = 1
            options = {"crf": str(crf), "preset": preset}
            if min(self.width, self.height) < SIMD_SAFE_PX:
                options["x264-params"] = "asm=0"
            self._stream.options = options
        except BaseException as error:
            self._atomic.__exit__(type(error), error, error.__traceback__)
            raise
        self._reformatter = av.video.reformatter.VideoReformatter()  # one conversion context for every frame
        self.frames_written = 0

    def write(self, frames: np.ndarray) -> None:
        """frames: [T, H, W, 3] uint8 RGB."""
        expected = (self.height, self.width, 3)
        if frames.shape[1:] != expected or frames.dtype != np.uint8:
            raise ValueError(f"{self.path}: expected uint8 frames of {expected}, got {frames.dtype} {frames.shape[1:]}")
        for frame in frames:
            picture = self._reformatter.reformat(av.VideoFrame.from_ndarray(frame, format="rgb24"), format="yuv420p")
            picture.pts = self.frames_written
            for packet in self._stream.encode(picture):
                self._container.mux(packet)
            self.frames_written += 1

    def close(self, error: BaseException | None = None) -> None:
        try:
            if error is None:
                for packet in self._stream.encode():
                    self._container.mux(packet)
            self._container.close()
        finally:
            exc = (type(error), error, error.__traceback__) if error is not None else (None, None, None)
            self._atomic.__exit__(*exc)

    def __enter__(self) -> Mp4Writer:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.close(exc)


def read_mp4(path: str | Path) -> tuple[np.ndarray, float]:
    """Decode every frame: ([T, H, W, 3] uint8 RGB, frames per second)."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = [frame.to_ndarray(format="rgb24") for frame in container.decode(stream)]
        fps = float(stream.average_rate)
    if not frames:
        raise ValueError(f"{path}: no video frames could be decoded")
    return np.stack(frames), fps


def resize_frames(frames: np.ndarray, size: int) -> np.ndarray:
    """uint8 [..., H, W, 3] -> uint8 [..., size, size, 3] (unchanged when already that size): cv2.INTER_AREA when
    both sides shrink (pixel-area averaging: no aliasing of fine texture), cv2.INTER_LINEAR otherwise."""
    flat = frames.reshape(-1, *frames.shape[-3:])
    height, width = flat.shape[1:3]
    if (height, width) == (size, size):
        return frames
    interpolation = cv2.INTER_AREA if size < height and size < width else cv2.INTER_LINEAR
    resized = np.empty((len(flat), size, size, 3), np.uint8)
    for i, frame in enumerate(flat):
        resized[i] = cv2.resize(frame, (size, size), interpolation=interpolation)
    return resized.reshape(*frames.shape[:-3], size, size, 3)
