"""Generate the demo world in the raw CC2017 layout: stimuli, CIFTI fMRI, captions, and the ground truth.

    {out}/stimuli/{seg|test}{i}.mp4
    {out}/subject{k}/fmri/{run}/cifti/{run}_{rep}_Atlas.dtseries.nii
    {out}/CC2017-SE/{basic,img,motion,video}_descriptions.csv     (basic, anchor, motion, holistic)
    {out}/ground_truth.h5

Same config (seed included) -> the same decoded frames, fMRI arrays and CSVs.
"""

from __future__ import annotations

import json
import logging
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import h5py
import numpy as np
from tqdm import tqdm

from ..data import cc2017_layout as layout
from ..data.cifti import write_dtseries
from ..data.video import Mp4Writer
from ..io.atomic import atomic_output
from ..io.captions import write_captions
from .captions import LEVELS, clip_captions
from .config import WorldConfig
from .features import frame_features, luminance
from .fmri import build_subject, latent_timecourse, shared_projection, simulate_noise, subject_signals
from .layout import WorldFiles, n_volumes, repeats, world_files, world_runs
from .render import blank_frame, render_scene
from .scenes import Scene, sample_movie, scene_index_at, scenes_in

log = logging.getLogger(__name__)
RENDER_CHUNK_FRAMES = 120  # frames rendered at once: bounds memory whatever the shot length


def _render_movie(config: WorldConfig, run: layout.Run, scenes: list[Scene], path: Path) -> np.ndarray:
    """Write one stimulus movie and return the frame features of its whole fMRI run (blank screen included)."""
    size, fps = config.frame_size, config.fps
    blank = blank_frame(size)[None]
    blank_luma = luminance(blank)[0]
    movie_frames = config.clips_per_segment * config.frames_per_clip
    frame_times = np.arange(movie_frames) / fps
    shot_of_frame = scene_index_at(scenes, frame_times)
    rows, previous = [], blank_luma
    with Mp4Writer(path, fps, size, crf=config.video_crf) as writer:
        for index, scene in enumerate(scenes):
            frames_of_shot = np.flatnonzero(shot_of_frame == index)
            for chunk in np.array_split(
                frames_of_shot, max(1, int(np.ceil(len(frames_of_shot) / RENDER_CHUNK_FRAMES)))
            ):
                frames = render_scene(scene, frame_times[chunk] - scene.start, size)
                writer.write(frames)
                rows.append(frame_features(frames, previous, scene, config.feature_grid))
                previous = luminance(frames[-1:])[0]
    # The run: blank screen during the leading volumes, the movie, then blank again (the first blank frame after the
    # movie carries the offset transient).
    static_blank = frame_features(blank, blank_luma, None, config.feature_grid)
    offset = frame_features(blank, previous, None, config.feature_grid)
    frames_per_volume = config.frames_per_clip
    lead = np.repeat(static_blank, run.leading_volumes * frames_per_volume, axis=0)
    trail = np.repeat(static_blank, run.trailing_volumes * frames_per_volume - 1, axis=0)
    return np.concatenate([lead, *rows, offset, trail]).astype(np.float32)


def _simulate_subject(config: WorldConfig, number: int, latents: dict[str, np.ndarray], out_dir: Path) -> dict:
    """Write every CIFTI run of one subject; return its ground truth."""
    subject = build_subject(
        np.random.default_rng([config.seed, 2, number]), number, config.cortical_vertices[number - 1], config
    )
    runs = world_runs(config)
    movie_rows = {run.name: slice(run.leading_volumes, run.leading_volumes + config.clips_per_segment) for run in runs}
    signals = subject_signals(subject, latents, movie_rows)
    for ordinal, run in enumerate(runs):
        clean = subject.baseline[None] + signals[run.name]
        for rep in range(1, repeats(config, run) + 1):
            rng = np.random.default_rng([config.seed, 3, number, ordinal, rep])
            noise = simulate_noise(rng, len(clean), movie_rows[run.name], subject.noise_sd, config.noise)
            write_dtseries(layout.cifti_path(out_dir, number, run, rep), clean + noise, subject.brain_models, config.tr)
    return {
        "visual_mask": subject.visual,
        "baseline": subject.baseline.astype(np.float32),
        "noise_sd": subject.noise_sd.astype(np.float32),
        "signal_sd": subject.signal_sd.astype(np.float32),
        "weights": subject.weights,
        "signal": signals,
    }


def _clip_table(config: WorldConfig, movies: dict[str, list[Scene]]) -> tuple[list[dict], dict[str, list[str]]]:
    clips, captions = [], {level: [] for level in LEVELS}
    for run in world_runs(config):
        for j in range(config.clips_per_segment):
            t0 = j * config.tr
            shots = scenes_in(movies[run.name], t0, t0 + config.tr)
            clip = layout.clip_id(run, j)
            for level, text in clip_captions(shots, t0, config.tr).items():
                captions[level].append(text)
            clips.append(
                {
                    "clip_id": clip,
                    "split": run.split,
                    "run": run.name,
                    "index": j,
                    "start_s": t0,
                    "shots": [{"offset_s": max(0.0, s.start - t0), **s.to_dict()} for s in shots],
                }
            )
    return clips, captions


def _write_captions(files: WorldFiles, clips: list[dict], captions: dict[str, list[str]]) -> None:
    clip_ids = [c["clip_id"] for c in clips]
    for level, path in files.captions.items():
        write_captions(path, dict(zip(clip_ids, captions[level])), clip_ids)


def _write_ground_truth(path: Path, config: WorldConfig, clips: list[dict], latents: dict, subjects: dict) -> None:
    strings = h5py.string_dtype()
    with atomic_output(path) as tmp, h5py.File(tmp, "w") as h5:
        h5.attrs["world_config"] = json.dumps(config.to_dict())
        h5.attrs["description"] = (
            "Demo-world ground truth. clips/*: one row per 2-s clip (scene parameters as JSON). latent/{run}: the shared "
            "HRF-convolved latent [volumes, latent_dim]. subject{k}/signal/{run}: noise-free stimulus response "
            "[volumes, grayordinates] (BOLD = baseline + signal + noise), visual_mask: the true visual vertices."
        )
        group = h5.create_group("clips")
        group["clip_id"] = np.array([c["clip_id"] for c in clips], dtype=object).astype(strings)
        group["split"] = np.array([c["split"] for c in clips], dtype=object).astype(strings)
        group["run"] = np.array([c["run"] for c in clips], dtype=object).astype(strings)
        group["index"] = np.array([c["index"] for c in clips], dtype=np.int32)
        group["start_s"] = np.array([c["start_s"] for c in clips], dtype=np.float32)
        group["scene_params"] = np.array([json.dumps(c["shots"]) for c in clips], dtype=object).astype(strings)
        for name, latent in latents.items():
            h5[f"latent/{name}"] = latent
        for number, truth in subjects.items():
            sub = h5.create_group(f"subject{number}")
            for key in ("visual_mask", "baseline", "noise_sd", "signal_sd", "weights"):
                sub[key] = truth[key]
            for name, signal in truth["signal"].items():
                sub[f"signal/{name}"] = signal


def generate_world(config: WorldConfig, out_dir: str | Path, workers: int = 1) -> WorldFiles:
    """Write the whole demo world under `out_dir`, using up to `workers` processes."""
    out_dir = Path(out_dir)
    files = world_files(config, out_dir)
    runs = world_runs(config)
    movie_seconds = config.clips_per_segment * config.tr
    movies = {
        run.name: sample_movie(
            np.random.default_rng([config.seed, 0, ordinal]), movie_seconds, config.scene_seconds, config.max_objects
        )
        for ordinal, run in enumerate(runs)
    }

    with ProcessPoolExecutor(max_workers=max(1, workers)) as pool:
        log.info("rendering %d movies of %g s at %d px", len(runs), movie_seconds, config.frame_size)
        futures = {
            run.name: pool.submit(_render_movie, config, run, movies[run.name], path)
            for run, path in zip(runs, files.stimuli)
        }
        features = {name: future.result() for name, future in tqdm(futures.items(), desc="stimuli", unit="movie")}

        # z-score every feature over the movie frames of all runs, then project onto the shared latent space.
        movie_frames = {
            run.name: slice(
                run.leading_volumes * config.frames_per_clip,
                (run.leading_volumes + config.clips_per_segment) * config.frames_per_clip,
            )
            for run in runs
        }
        stacked = np.concatenate([features[name][rows] for name, rows in movie_frames.items()])
        mean, sd = stacked.mean(axis=0), stacked.std(axis=0)
        sd[sd == 0] = 1.0
        projection = shared_projection(np.random.default_rng([config.seed, 1]), config.feature_grid, config.latent_dim)
        latents = {
            run.name: latent_timecourse(
                (features[run.name] - mean) / sd, projection, config.fps, config.tr, n_volumes(config, run)
            )
            for run in runs
        }
        movie_volumes = np.concatenate(
            [latents[run.name][run.leading_volumes : run.leading_volumes + config.clips_per_segment] for run in runs]
        )
        latent_mean, latent_sd = movie_volumes.mean(axis=0), movie_volumes.std(axis=0)
        latents = {name: (latent - latent_mean) / latent_sd for name, latent in latents.items()}

        log.info("simulating fMRI for %d subjects", config.n_subjects)
        futures = {
            k: pool.submit(_simulate_subject, config, k, latents, out_dir) for k in range(1, config.n_subjects + 1)
        }
        subjects = {k: future.result() for k, future in tqdm(futures.items(), desc="subjects", unit="subject")}

    clips, captions = _clip_table(config, movies)
    _write_captions(files, clips, captions)
    _write_ground_truth(files.ground_truth, config, clips, latents, subjects)
    log.info("demo world written to %s (%d files)", out_dir, len(files.all()))
    return files
