"""Rule preprocess_fmri_hcp: visual ROI, detrend and z-score per run, 1-s clips from the timing file, test averaged."""

from semvideo_core.logs import log_to_file
from semvideo_core.stages.data import preprocess_fmri_hcp
from semvideo_core.threads import confine_threads

with log_to_file(snakemake.log[0], threads=snakemake.threads), confine_threads(snakemake.threads):
    preprocess_fmri_hcp(
        snakemake.input.runs,
        snakemake.input.clip_times,
        snakemake.params,
        snakemake.output[0],
        snakemake.wildcards.hcp_subject,
    )
