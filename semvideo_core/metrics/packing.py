"""Protocol switches applied to clips before scoring (metrics.md §1): frame count, resolution, and the reference
repositories' side-by-side GIF packing. Clips are uint8 [N, T, H, W, 3] RGB throughout.

* `select_frames` brings clips to the frame count a protocol scores (6 at 3 fps for MinD-Video / NEURONS, 8 at
  4 Hz for Mind-Animator), sampling the same 2-s window in time.
* `resize_clips` brings them to its resolution (256 or 512).
* `pack_like_references` reproduces what the reference scripts actually score: GT and recon side by side in one
  torchvision make_grid frame (2-px black padding), saved as a GIF and cut in half again, which adds black borders,
  a 1-px GT/recon misalignment and a 256-colour palette shared by both halves.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from ..data.video import resize_frames
from .pixel import map_threads

FRAME_MODES = ("even", "first")
PADDING = 2  # torchvision.utils.make_grid's default, used by every reference save_videos_grid


def _check_clips(clips: np.ndarray, name: str = "clips") -> np.ndarray:
    clips = np.asarray(clips)
    if clips.ndim != 5 or clips.shape[-1] != 3 or clips.dtype != np.uint8:
        raise ValueError(f"{name} must be uint8 [N, T, H, W, 3] RGB, got {clips.dtype} of shape {clips.shape}")
    return clips


def frame_indices(available: int, frames: int, mode: str = "even") -> np.ndarray:
    """Indices of the `frames` frames `select_frames` keeps out of `available`.

    "even": frame i of the new clip is the one nearest in time to i / frames of the clip's span (clip start plus
    i x the new frame period), i.e. round(i * available / frames): 8 -> 6 keeps 0,1,3,4,5,7; 16 -> 6 keeps
    0,3,5,8,11,13. "first": the first `frames` frames (the start of the clip at the original rate)."""
    if mode not in FRAME_MODES:
        raise ValueError(f"unknown frame selection {mode!r}; expected one of {FRAME_MODES}")
    if not 1 <= frames <= available:
        raise ValueError(f"cannot select {frames} frames from clips of {available} (no frames are invented)")
    if mode == "first":
        return np.arange(frames)
    return np.minimum(np.floor(np.arange(frames) * available / frames + 0.5).astype(int), available - 1)


def select_frames(clips: np.ndarray, frames: int, mode: str = "even") -> np.ndarray:
    """[N, T, H, W, 3] -> [N, frames, H, W, 3] (a copy); see `frame_indices` for the modes."""
    clips = _check_clips(clips)
    return clips[:, frame_indices(clips.shape[1], frames, mode)]


def resize_clips(clips: np.ndarray, size: int, workers: int | None = None) -> np.ndarray:
    """[N, T, H, W, 3] -> [N, T, size, size, 3] uint8, unchanged when already that size: `resize_frames` per clip,
    on `workers` threads.

    Shrinking (both sides) uses cv2.INTER_AREA: pixel-area averaging, so fine texture does not alias into SSIM and
    flow as bilinear sampling would. Otherwise cv2.INTER_LINEAR, the bilinear resizing of the references (moviepy's
    target_resolution for Mind-Animator's 512² frames, cv2.resize in its EPE.py)."""
    clips = _check_clips(clips)
    if clips.shape[2:4] == (size, size):
        return clips
    out = np.empty((*clips.shape[:2], size, size, 3), dtype=np.uint8)

    def one(i: int) -> None:
        out[i] = resize_frames(clips[i], size)

    map_threads(one, range(len(clips)), workers)
    return out


def gif_palette(frame: np.ndarray) -> np.ndarray:
    """[H, W, 3] uint8 -> the same frame after a GIF round trip: a 256-colour median-cut palette of its own.

    This is what imageio.mimsave does to RGB frames: its Pillow plugin lets Pillow's GIF writer convert each frame
    with convert("P", palette=ADAPTIVE), and the legacy GIF-PIL plugin of the reference era calls
    quantize(256, method=0); both are the median-cut quantize below, without dithering (checked against imageio
    2.38 / Pillow 13 by a real write and read). Not emulated: the writer merges a frame identical to the previous
    one into it, so such a GIF reads back with fewer frames."""
    quantized = Image.fromarray(frame).quantize(colors=256, method=Image.Quantize.MEDIANCUT)
    return np.asarray(quantized.convert("RGB"))


def recons_only_gif(recon: np.ndarray, workers: int | None = None) -> np.ndarray:
    """[N, T, H, W, 3] -> the same clips as read back from Mind-Animator's `recons_only/test{i}.gif`, which its EPE
    takes the reconstruction from: make_grid of one image is the image itself (no padding), then each frame's own
    GIF palette (`gif_palette`)."""
    frames = _check_clips(recon, "recon").reshape(-1, *recon.shape[2:]).copy()

    def one(i: int) -> None:
        frames[i] = gif_palette(frames[i])

    map_threads(one, range(len(frames)), workers)
    return frames.reshape(recon.shape)


def pack_like_references(
    truth: np.ndarray, recon: np.ndarray, gif: bool = True, workers: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """[N, T, H, W, 3] x 2 -> (truth_half, recon_half), each [N, T, H + 4, W + 3, 3] uint8, as the reference scripts
    read them back from `test_and_gt{i}.gif`.

    Per frame: torchvision.utils.make_grid([truth, recon], padding=2, pad_value=0) gives a black canvas of
    (H + 4) x (2W + 6) with the truth at rows 2..H+1, columns 2..W+1 and the recon at columns W+4..2W+3; then
    np.split(grid, 2, axis=width). So the truth sits at columns 2..W+1 of its half and the recon at 1..W of its own.
    With gif=True each whole grid frame is palette-quantised (`gif_palette`) before the split, so both halves share
    one palette, as in the reference files."""
    truth, recon = _check_clips(truth, "truth"), _check_clips(recon, "recon")
    if truth.shape != recon.shape:
        raise ValueError(f"truth clips {truth.shape} and recon clips {recon.shape} must have one shape to be packed")
    n, t, height, width, _ = truth.shape
    p = PADDING
    grid = np.zeros((n, t, height + 2 * p, 2 * width + 3 * p, 3), dtype=np.uint8)
    grid[:, :, p : p + height, p : p + width] = truth
    grid[:, :, p : p + height, width + 2 * p : 2 * width + 2 * p] = recon
    if gif:
        frames = grid.reshape(n * t, *grid.shape[2:])

        def one(i: int) -> None:
            frames[i] = gif_palette(frames[i])

        map_threads(one, range(len(frames)), workers)
    truth_half, recon_half = np.split(grid, 2, axis=3)
    return np.ascontiguousarray(truth_half), np.ascontiguousarray(recon_half)
