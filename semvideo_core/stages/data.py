"""Stages of rules/data.smk: raw data checkpoints (cc2017_raw, hcp_raw), fMRI preprocessing (preprocess_fmri,
preprocess_fmri_hcp) and clip extraction (extract_clips, extract_clips_hcp)."""

from __future__ import annotations

from functools import partial
from pathlib import Path

from ..data import cc2017_layout
from ..data.cifti import cortex_columns
from ..data.clips import extract_clips as cut_clips
from ..data.download import download_file, write_checksums
from ..data.hcp import clip_windows, ensure_hcp_raw, read_clip_times, timed_clips, visual_roi_columns
from ..data.preprocess import PreprocessConfig, group_runs, preprocess_subject, preprocess_timed_runs


def cc2017_raw(raw_dir, relative: list[str], download_url: str | None, manifest) -> None:
    """Make sure every raw CC2017 file is under raw_dir, then record the sha256 of each in `manifest`.

    Files already present are used as they are. Missing ones are downloaded from `download_url` + relative path
    (resumable) when a mirror is configured; otherwise the error lists what to place where.
    """
    raw_dir = Path(raw_dir)
    missing = [name for name in relative if not (raw_dir / name).is_file()]
    if missing and not download_url:
        shown = "\n  ".join(missing[:20]) + ("\n  ..." if len(missing) > 20 else "")
        raise FileNotFoundError(
            f"{len(missing)} of {len(relative)} CC2017 files are missing under {raw_dir}:\n  {shown}\n"
            f"Download the dataset from {cc2017_layout.CC2017_PAGE} (the site needs a login) and unpack it so that "
            f"{raw_dir} holds stimuli/ and subject*/fmri/...; or set cc2017.download_url to a mirror of that layout."
        )
    for name in missing:
        download_file(f"{download_url.rstrip('/')}/{name}", raw_dir / name)
    write_checksums([raw_dir / name for name in relative], raw_dir, Path(manifest))


def hcp_raw(raw_dir, subjects: list, runs: list, support_files: list, manifest, support_prefix) -> None:
    """Fetch the subjects' missing HCP 7T movie runs from S3, check the stimuli and clip timing, record sha256."""
    ensure_hcp_raw(raw_dir, subjects, runs, support_files, manifest, support_prefix=support_prefix)


def preprocess_fmri(
    cifti: list, runs: list, settings: dict, trim: list, lag_trs: int, cortical_vertices, out_path, attrs, workers
) -> None:
    """Trim, detrend, z-score, select reproducible vertices and average test presentations of one subject;
    `runs` labels every CIFTI file (run name, split, presentation), `settings` is the config's preprocess."""
    config = PreprocessConfig(trim=cc2017_layout.trim_rule(trim), lag_trs=lag_trs, **settings)
    columns = partial(cortex_columns, expected=cortical_vertices)
    preprocess_subject(group_runs(cifti, runs), columns, config, out_path, attrs=attrs, workers=workers)


def preprocess_fmri_hcp(runs: list, clip_times, params, out_path, subject: str) -> None:
    """The visual ROI, detrend and z-score per run, 1-s clips from the timing file, test presentations averaged."""
    clips = timed_clips(read_clip_times(clip_times), params.test_segment, params.clip_seconds)
    preprocess_timed_runs(
        dict(zip(params.run_names, runs)),
        clips,
        lambda layout, path: visual_roi_columns(layout.count, params.parcels, params.dlabel, source=str(path)),
        out_path,
        tr=params.tr,
        clip_seconds=params.clip_seconds,
        lag_trs=params.lag_trs,
        test_segment=params.test_segment,
        detrend_order=params.detrend_order,
        attrs={"dataset": "hcp", "subject": subject, "parcels": params.parcels},
    )


def _compression(settings: dict):
    return None if settings["compression"] == "none" else settings["compression"]


def extract_clips(movies: list, clips_per_run: int, settings: dict, clip_seconds: float, out_path) -> None:
    """Cut every stimulus movie of a split into clips, one per fMRI sample; `settings` is the config's clips."""
    cut_clips(
        [(Path(movie).stem, Path(movie)) for movie in movies],
        clips_per_run,
        out_path,
        protocol=settings["protocol"],
        size=settings["size"],
        clip_seconds=clip_seconds,
        backend=settings["backend"],
        compression=_compression(settings),
    )


def extract_clips_hcp(movies: list, clip_times, split: str, params, out_path) -> None:
    """Cut the 1-s clips of a split out of the HCP 7T movies, as the clip timing lists them."""
    clips = timed_clips(read_clip_times(clip_times), params.test_segment, params.clip_seconds)
    windows = clip_windows(clips, split, params.test_segment)
    by_run = dict(zip(params.run_names, map(Path, movies)))
    cut_clips(
        [(run, by_run[run]) for run in params.run_names if run in windows],
        max(len(w) for w in windows.values()),
        out_path,
        protocol=params.protocol,
        size=params.clips["size"],
        clip_seconds=params.clip_seconds,
        backend=params.clips["backend"],
        compression=_compression(params.clips),
        windows=windows,
    )
