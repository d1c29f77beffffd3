"""Stage of rules/preview.smk: what a person watches of a render (preview_video).

The evaluation frames of one variant's videos (render_video's `video.h5`) become one mp4 per clip and a
side-by-side sheet (ground truth | motion frames | anchor frame | video) of the first clips. Only the frame rate and
the sheet's clip count decide these files, so changing them re-encodes the previews and reruns neither the diffusion
nor the evaluation. No model is loaded here.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from ..data.video import Mp4Writer, resize_frames
from ..io.atomic import atomic_directory
from ..io.clip_arrays import read_clip_array

log = logging.getLogger(__name__)


def contact_sheet(columns: list[np.ndarray], length: int) -> np.ndarray:
    """Side-by-side frames [length, K * H, len(columns) * W, 3] of K clips: each column uint8 [K, T_c, H, W, 3]
    (a still: T_c = 1) shown at `length` steps, the nearest of its own frames at each."""
    rows = []
    for column in columns:
        index = np.round(np.linspace(0, column.shape[1] - 1, length)).astype(int)
        rows.append(np.concatenate(list(column[:, index]), axis=1))  # [length, K * H, W, 3]
    return np.concatenate(rows, axis=2)


def preview_video(inputs: dict, settings: dict, out: dict) -> None:
    """`inputs`: video (render_video's evaluation frames), motion_frames (decode_mad), anchor (render_anchor),
    clips (the true test frames). `settings`: fps, sheet_clips. `out`: mp4 (a folder, one file per rendered clip)
    and sheet (the first `sheet_clips` clips)."""
    frames, ids = read_clip_array(inputs["video"], "frames")  # [N, F_eval, H, W, 3]
    shown, side = ids[: settings["sheet_clips"]], frames.shape[2]
    # Every input is read (and its clip ids checked) before anything is written.
    truth = resize_frames(read_clip_array(inputs["clips"], "frames", shown)[0], side)
    motion = resize_frames(read_clip_array(inputs["motion_frames"], "frames", shown)[0], side)
    anchors = resize_frames(read_clip_array(inputs["anchor"], "anchor", shown)[0], side)
    sheet = contact_sheet([truth, motion, anchors[:, None], frames[: len(shown)]], frames.shape[1])
    fps = settings["fps"]
    with atomic_directory(out["mp4"]) as partial:  # published only once the sheet is written too
        for clip, clip_frames in zip(ids, frames):
            with Mp4Writer(Path(partial) / f"{clip}.mp4", fps, frames.shape[2:4][::-1]) as writer:
                writer.write(clip_frames)
        with Mp4Writer(out["sheet"], fps, sheet.shape[1:3][::-1]) as writer:
            writer.write(sheet)
    log.info("%s: %d mp4s at %s fps and a sheet of %d clips", out["mp4"], len(ids), fps, len(shown))
