"""Rule embed_text: one caption level -> per-token text embeddings with the configured text encoder."""

from semvideo_core.logs import log_to_file
from semvideo_core.stages.sad import embed_text
from semvideo_core.threads import confine_threads

with log_to_file(snakemake.log[0], threads=snakemake.threads), confine_threads(snakemake.threads):
    embed_text(snakemake.input.captions, snakemake.params.encoder, snakemake.params.embed, snakemake.output[0])
