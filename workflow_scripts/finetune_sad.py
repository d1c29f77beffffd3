"""Rule finetune_sad: per-subject fine-tuning of the pretrained SAD (resumes from its state folder)."""

from semvideo_core.config import with_checkpointing
from semvideo_core.logs import log_to_file
from semvideo_core.stages.sad import finetune_sad
from semvideo_core.threads import confine_threads

with log_to_file(snakemake.log[0], threads=snakemake.threads), confine_threads(snakemake.threads):
    finetune_sad(
        snakemake.input.pretrained,
        snakemake.input.fmri,
        snakemake.input.embeds,
        {
            "loss": snakemake.params.loss,
            "finetune": with_checkpointing(snakemake.params.finetune, snakemake.config["sad"]["finetune"]),
        },
        snakemake.output.weights,
        snakemake.params.state,
    )
