"""Rule extract_clips: cut every stimulus movie of a split into clips, one per fMRI sample."""

from semvideo_core.logs import log_to_file
from semvideo_core.stages.data import extract_clips
from semvideo_core.threads import confine_threads

with log_to_file(snakemake.log[0], threads=snakemake.threads), confine_threads(snakemake.threads):
    params = snakemake.params
    extract_clips(snakemake.input.movies, params.clips_per_run, params.clips, params.clip_seconds, snakemake.output[0])
