"""Rule ridge: the ridge-regression baseline's predicted caption embeddings for one subject and level."""

from semvideo_core.logs import log_to_file
from semvideo_core.stages.sad import ridge
from semvideo_core.threads import confine_threads

with log_to_file(snakemake.log[0], threads=snakemake.threads), confine_threads(snakemake.threads):
    ridge(snakemake.input.fmri, snakemake.input.embeds, snakemake.output[0], snakemake.params.ridge)
