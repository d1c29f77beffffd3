"""Rule preprocess_fmri: trim, detrend, z-score, select reproducible vertices, average test presentations."""

from semvideo_core.logs import log_to_file
from semvideo_core.stages.data import preprocess_fmri
from semvideo_core.threads import confine_threads

with log_to_file(snakemake.log[0], threads=snakemake.threads), confine_threads(snakemake.threads):
    params, wildcards = snakemake.params, snakemake.wildcards
    preprocess_fmri(
        snakemake.input.cifti,
        params.runs,
        params.preprocess,
        params.trim,
        params.lag_trs,
        params.cortical_vertices,
        snakemake.output[0],
        attrs={"dataset": wildcards.dataset, "subject": wildcards.subject},
        workers=snakemake.threads,
    )
