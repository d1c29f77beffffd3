"""Checkpoint hcp_raw: fetch missing HCP 7T movie runs from S3, check stimuli and clip timing, record sha256."""

from semvideo_core.data.hcp import ensure_hcp_raw
from semvideo_core.logs import log_to_file

with log_to_file(snakemake.log[0]):
    ensure_hcp_raw(
        snakemake.params.raw_dir,
        snakemake.params.subjects,
        snakemake.params.runs,
        snakemake.params.support_files,
        snakemake.output[0],
        support_prefix=snakemake.params.support_prefix,
    )
