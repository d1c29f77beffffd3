"""Rule ridge: the ridge-regression baseline's predicted caption embeddings for one subject and level."""

from threadpoolctl import threadpool_limits

from semvideo_core.logs import log_to_file
from semvideo_core.stages.sad import ridge

with log_to_file(snakemake.log[0], threads=snakemake.threads), threadpool_limits(snakemake.threads):
    ridge(snakemake.input.fmri, snakemake.input.embeds, snakemake.output[0], snakemake.params.ridge)
