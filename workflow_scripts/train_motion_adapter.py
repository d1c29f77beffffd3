"""Rule train_motion_adapter: the demo's MotionAdapter, trained with the t2i UNet frozen (resumes)."""

from semvideo_core.config import with_checkpointing
from semvideo_core.logs import log_to_file
from semvideo_core.stages.cvr import train_motion_adapter
from semvideo_core.threads import confine_threads

with log_to_file(snakemake.log[0], threads=snakemake.threads), confine_threads(snakemake.threads):
    train_motion_adapter(
        snakemake.input.latents,
        snakemake.input.holistic,
        snakemake.params.t2i,
        with_checkpointing(snakemake.params.settings, snakemake.config["motion_adapter"]),
        snakemake.output[0],
        snakemake.params.state,
    )
