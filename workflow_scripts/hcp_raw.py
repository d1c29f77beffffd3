"""Checkpoint hcp_raw: fetch missing HCP 7T movie runs from S3, check stimuli and clip timing, record sha256."""

from semvideo_core.logs import log_to_file
from semvideo_core.stages.data import hcp_raw
from semvideo_core.threads import confine_threads

with log_to_file(snakemake.log[0], threads=snakemake.threads), confine_threads(snakemake.threads):
    params = snakemake.params
    # where missing files come from, not what they hold (their checksums are the output): from the config, not params
    support_prefix = snakemake.config["hcp"]["support_s3_prefix"]
    hcp_raw(params.raw_dir, params.subjects, params.runs, params.support_files, snakemake.output[0], support_prefix)
