"""Rule extract_clips_hcp: cut the 1-s clips of a split out of the HCP 7T movies, as the clip timing lists them."""

from pathlib import Path

from semvideo_core.data.clips import extract_clips
from semvideo_core.data.hcp import clip_windows, read_clip_times, timed_clips
from semvideo_core.logs import log_to_file

with log_to_file(snakemake.log[0]):
    params = snakemake.params
    clips = timed_clips(read_clip_times(snakemake.input.clip_times), params.test_segment, params.clip_seconds)
    windows = clip_windows(clips, snakemake.wildcards.split, params.test_segment)
    movies = dict(zip(params.run_names, map(Path, snakemake.input.movies)))
    extract_clips(
        [(run, movies[run]) for run in params.run_names if run in windows],
        max(len(w) for w in windows.values()),
        snakemake.output[0],
        protocol=params.protocol,
        size=params.clips["size"],
        clip_seconds=params.clip_seconds,
        backend=params.clips["backend"],
        compression=None if params.clips["compression"] == "none" else params.clips["compression"],
        windows=windows,
    )
