"""Checkpoint hcp_raw: fetch missing HCP 7T movie runs from S3, check stimuli and clip timing, record sha256."""

from semvideo_core.logs import log_to_file
from semvideo_core.stages.data import hcp_raw
from semvideo_core.threads import confine_threads

with log_to_file(snakemake.log[0], threads=snakemake.threads), confine_threads(snakemake.threads):
    params = snakemake.params
    hcp_raw(
        params.raw_dir, params.subjects, params.runs, params.support_files, snakemake.output[0], params.support_prefix
    )
