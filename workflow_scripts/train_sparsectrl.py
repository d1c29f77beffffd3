"""Rule train_sparsectrl: the demo's SparseCtrl RGB model, trained with the motion UNet frozen (resumes)."""

from semvideo_core.config import with_checkpointing
from semvideo_core.logs import log_to_file
from semvideo_core.stages.cvr import train_sparsectrl
from semvideo_core.threads import confine_threads

with log_to_file(snakemake.log[0], threads=snakemake.threads), confine_threads(snakemake.threads):
    train_sparsectrl(
        snakemake.input.latents,
        snakemake.input.holistic,
        snakemake.params.t2i,
        snakemake.params.motion_adapter,
        with_checkpointing(snakemake.params.settings, snakemake.config["sparsectrl"]),
        snakemake.output[0],
        snakemake.params.state,
    )
