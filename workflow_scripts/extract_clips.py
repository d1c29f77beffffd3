"""Rule extract_clips: cut every stimulus movie of a split into clips, one per fMRI sample."""

from pathlib import Path

from semvideo_core.data.clips import extract_clips
from semvideo_core.logs import log_to_file

with log_to_file(snakemake.log[0]):
    settings = snakemake.params.clips
    extract_clips(
        [(Path(movie).stem, Path(movie)) for movie in snakemake.input.movies],
        snakemake.params.clips_per_run,
        snakemake.output[0],
        protocol=settings["protocol"],
        size=settings["size"],
        clip_seconds=snakemake.params.clip_seconds,
        backend=settings["backend"],
        compression=None if settings["compression"] == "none" else settings["compression"],
    )
