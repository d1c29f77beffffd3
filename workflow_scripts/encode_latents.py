"""Rule encode_latents: VAE latents of every clip of one split."""

from semvideo_core.logs import log_to_file
from semvideo_core.stages.mad import encode_latents
from semvideo_core.threads import confine_threads

with log_to_file(snakemake.log[0], threads=snakemake.threads), confine_threads(snakemake.threads):
    encode_latents(snakemake.input.clips, snakemake.params.vae, snakemake.params.latents, snakemake.output[0])
