"""Rule semantic_retrieval: top-1 test-set retrieval in embedding space per variant, subject and level."""

from semvideo_core.logs import log_to_file
from semvideo_core.metrics.retrieval import write_retrieval_table

with log_to_file(snakemake.log[0]):
    write_retrieval_table(snakemake.input.predictions, snakemake.input.embeds, snakemake.output[0])
