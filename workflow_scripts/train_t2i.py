"""Rule train_t2i: the demo's text-to-image UNet, trained on the training clips' first-frame latents (resumes)."""

import torch

from semvideo_core.logs import log_to_file
from semvideo_core.stages.cvr import train_t2i

with log_to_file(snakemake.log[0], threads=snakemake.threads):
    torch.set_num_threads(snakemake.threads)
    train_t2i(
        snakemake.input.latents,
        snakemake.input.anchor,
        snakemake.params.t2i,
        snakemake.output[0],
        snakemake.params.state,
    )
