"""Rule extract_clips_hcp: cut the 1-s clips of a split out of the HCP 7T movies, as the clip timing lists them."""

from semvideo_core.logs import log_to_file
from semvideo_core.stages.data import extract_clips_hcp
from semvideo_core.threads import confine_threads

with log_to_file(snakemake.log[0], threads=snakemake.threads), confine_threads(snakemake.threads):
    extract_clips_hcp(
        snakemake.input.movies,
        snakemake.input.clip_times,
        snakemake.wildcards.split,
        snakemake.params,
        snakemake.output[0],
    )
