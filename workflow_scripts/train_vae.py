"""Rule train_vae: the demo VAE, trained on the dataset's training frames (resumes from its state folder)."""

import torch

from semvideo_core.logs import log_to_file
from semvideo_core.stages.mad import train_vae

with log_to_file(snakemake.log[0], threads=snakemake.threads):
    torch.set_num_threads(snakemake.threads)
    train_vae(snakemake.input[0], snakemake.params.vae, snakemake.output[0], snakemake.params.state)
