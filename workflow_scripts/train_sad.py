"""Rule train_sad: multi-subject SAD pretraining for one caption level (resumes from its state folder)."""

from semvideo_core.config import with_checkpointing
from semvideo_core.logs import log_to_file
from semvideo_core.stages.sad import train_sad
from semvideo_core.threads import confine_threads

with log_to_file(snakemake.log[0], threads=snakemake.threads), confine_threads(snakemake.threads):
    settings = {k: snakemake.params[k] for k in ("model", "loss", "val_fraction")}
    settings["pretrain"] = with_checkpointing(snakemake.params.pretrain, snakemake.config["sad"]["pretrain"])
    train_sad(
        list(snakemake.input.fmri), snakemake.input.embeds, settings, snakemake.output.weights, snakemake.params.state
    )
