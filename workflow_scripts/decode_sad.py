"""Rule decode_sad: predicted caption embeddings of every test clip of one subject and level."""

import torch

from semvideo_core.logs import log_to_file
from semvideo_core.sad_stage import decode_sad

with log_to_file(snakemake.log[0]):
    torch.set_num_threads(snakemake.threads)
    decode_sad(
        snakemake.input.model,
        snakemake.input.fmri,
        snakemake.input.embeds,
        snakemake.output[0],
        refine=snakemake.params.refine,
        seed=snakemake.params.seed,
    )
