"""Checkpoint cc2017_raw: use the raw CC2017 files in raw_dir, download missing ones from a mirror, record sha256."""

from semvideo_core.logs import log_to_file
from semvideo_core.stages.data import cc2017_raw
from semvideo_core.threads import confine_threads

with log_to_file(snakemake.log[0], threads=snakemake.threads), confine_threads(snakemake.threads):
    params = snakemake.params
    # where missing files come from, not what they hold (their checksums are the output): from the config, not params
    download_url = snakemake.config["cc2017"]["download_url"]
    cc2017_raw(params.raw_dir, params.files, download_url, snakemake.output[0])
