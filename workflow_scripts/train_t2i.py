"""Rule train_t2i: the demo's text-to-image UNet, trained on the training clips' first-frame latents (resumes)."""

from semvideo_core.config import with_checkpointing
from semvideo_core.logs import log_to_file
from semvideo_core.stages.cvr import train_t2i
from semvideo_core.threads import confine_threads

with log_to_file(snakemake.log[0], threads=snakemake.threads), confine_threads(snakemake.threads):
    train_t2i(
        snakemake.input.latents,
        snakemake.input.anchor,
        with_checkpointing(snakemake.params.t2i, snakemake.config["t2i"]),
        snakemake.output[0],
        snakemake.params.state,
    )
