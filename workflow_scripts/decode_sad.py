"""Rules decode_sad and decode_sad_train: predicted caption embeddings of every test (or training) clip of one
subject and level."""

from semvideo_core.logs import log_to_file
from semvideo_core.stages.sad import decode_sad
from semvideo_core.threads import confine_threads

with log_to_file(snakemake.log[0], threads=snakemake.threads), confine_threads(snakemake.threads):
    decode_sad(
        snakemake.input.model,
        snakemake.input.fmri,
        snakemake.input.embeds,
        snakemake.output[0],
        snakemake.params.decode,
        split=snakemake.params.split,
    )
