"""Rule ridge: the ridge-regression baseline's predicted caption embeddings for one subject and level."""

from semvideo_core.logs import log_to_file
from semvideo_core.ridge import ridge_decode

with log_to_file(snakemake.log[0]):
    settings = snakemake.params.ridge
    ridge_decode(
        snakemake.input.fmri, snakemake.input.embeds, snakemake.output[0], settings["alphas"], settings["target"]
    )
