"""The frames SemMiner shows the MLLM: evenly spaced frames of a clip, resized, sent as JPEG images in one
message or as one short H.264 video (for servers that take video input, as vLLM does for Qwen2.5-VL)."""

from __future__ import annotations

import base64
import hashlib
import io
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import av
import cv2
import h5py
import numpy as np

FRAME_MODES = ("images", "video")


@dataclass(frozen=True)
class FrameSettings:
    count: int = 6  # frames per clip
    size: int = 224  # side of the square frames sent
    mode: str = "images"
    jpeg_quality: int = 90
    video_fps: float = 3.0  # frame rate of the video sent in "video" mode

    def __post_init__(self):
        if self.mode not in FRAME_MODES:
            raise ValueError(f"frames.mode must be one of {FRAME_MODES}, got {self.mode!r}")
        if self.count < 1 or self.size < 16:
            raise ValueError(f"frames: need count >= 1 and size >= 16, got {self.count} and {self.size}")


def pick_frames(clip: np.ndarray, count: int) -> np.ndarray:
    """[T, H, W, 3] -> [min(count, T), H, W, 3]: evenly spaced, first and last included."""
    indices = np.unique(np.linspace(0, len(clip) - 1, min(count, len(clip))).round().astype(int))
    return clip[indices]


def prepare_frames(clip: np.ndarray, settings: FrameSettings) -> np.ndarray:
    """[T, H, W, 3] uint8 RGB -> [count, size, size, 3]: picked, then resized (area averaging when shrinking)."""
    frames = pick_frames(clip, settings.count)
    if frames.shape[1:3] != (settings.size, settings.size):
        shrinking = frames.shape[1] > settings.size
        interpolation = cv2.INTER_AREA if shrinking else cv2.INTER_CUBIC
        frames = np.stack([cv2.resize(f, (settings.size, settings.size), interpolation=interpolation) for f in frames])
    return np.ascontiguousarray(frames)


def frames_hash(frames: np.ndarray, settings: FrameSettings) -> str:
    """Identity of what the model is shown: the pixels and how they are sent (not the encoder's bytes)."""
    digest = hashlib.sha256(repr((frames.shape, settings)).encode())
    digest.update(frames.tobytes())
    return digest.hexdigest()[:16]


def _jpeg_url(frame: np.ndarray, quality: int) -> str:
    ok, encoded = cv2.imencode(".jpg", cv2.cvtColor(frame, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError("JPEG encoding failed")
    return "data:image/jpeg;base64," + base64.b64encode(encoded.tobytes()).decode("ascii")


def _mp4_url(frames: np.ndarray, fps: float) -> str:
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=round(fps))
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        stream.codec_context.thread_count = 1  # same frames, same bytes
        stream.options = {"crf": "18"}
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())
    return "data:video/mp4;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def media_parts(frames: np.ndarray, settings: FrameSettings) -> list[dict]:
    """OpenAI chat content parts carrying the frames: one image_url each, or one video_url."""
    if settings.mode == "video":
        return [{"type": "video_url", "video_url": {"url": _mp4_url(frames, settings.video_fps)}}]
    return [{"type": "image_url", "image_url": {"url": _jpeg_url(f, settings.jpeg_quality)}} for f in frames]


class ClipStore:
    """The clips of one or more extract_clips outputs (HDF5 `frames` [N, T, H, W, 3], `clip_id` [N]), read one
    clip at a time."""

    def __init__(self, paths: list[str | Path]):
        self.paths = [Path(p) for p in paths]
        self.clip_ids: list[str] = []
        self._where: list[tuple[int, int]] = []
        for file_index, path in enumerate(self.paths):
            try:
                with h5py.File(path, "r") as h5:
                    ids = [c.decode() if isinstance(c, bytes) else str(c) for c in h5["clip_id"][:]]
                    if h5["frames"].shape[0] != len(ids) or h5["frames"].ndim != 5:
                        raise ValueError(f"frames {h5['frames'].shape} do not match {len(ids)} clip ids")
            except (OSError, KeyError, ValueError) as error:
                raise ValueError(f"{path}: not a clips file of extract_clips ({error})") from error
            self.clip_ids += ids
            self._where += [(file_index, row) for row in range(len(ids))]
        duplicates = sorted(c for c, n in Counter(self.clip_ids).items() if n > 1)
        if duplicates:
            raise ValueError(f"clip ids repeat across {[str(p) for p in self.paths]}: {duplicates[:5]}")
        self._files: dict[int, h5py.File] = {}

    def __len__(self) -> int:
        return len(self.clip_ids)

    def frames(self, index: int) -> np.ndarray:
        """[T, H, W, 3] uint8 of clip `index`."""
        file_index, row = self._where[index]
        if file_index not in self._files:
            self._files[file_index] = h5py.File(self.paths[file_index], "r")
        return self._files[file_index]["frames"][row]

    def close(self) -> None:
        for handle in self._files.values():
            handle.close()
        self._files.clear()
