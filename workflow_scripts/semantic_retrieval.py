"""Rule semantic_retrieval: top-1 test-set retrieval in embedding space per variant, subject and level."""

from semvideo_core.logs import log_to_file
from semvideo_core.stages.sad import semantic_retrieval
from semvideo_core.threads import confine_threads

with log_to_file(snakemake.log[0], threads=snakemake.threads), confine_threads(snakemake.threads):
    semantic_retrieval(snakemake.input.predictions, snakemake.input.embeds, snakemake.output[0])
