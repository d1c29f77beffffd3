"""Rule train_vae: the demo VAE, trained on the dataset's training frames (resumes from its state folder)."""

from semvideo_core.config import with_checkpointing
from semvideo_core.logs import log_to_file
from semvideo_core.stages.mad import train_vae
from semvideo_core.threads import confine_threads

with log_to_file(snakemake.log[0], threads=snakemake.threads), confine_threads(snakemake.threads):
    settings = with_checkpointing(snakemake.params.vae, snakemake.config["vae"])
    train_vae(snakemake.input[0], settings, snakemake.output[0], snakemake.params.state)
