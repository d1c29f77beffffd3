"""Checkpoint cc2017_raw: use the raw CC2017 files in raw_dir, download missing ones from a mirror, record sha256."""

from semvideo_core.data.cc2017_layout import ensure_raw_files
from semvideo_core.logs import log_to_file

with log_to_file(snakemake.log[0]):
    ensure_raw_files(
        snakemake.params.raw_dir, snakemake.params.files, snakemake.params.download_url, snakemake.output[0]
    )
