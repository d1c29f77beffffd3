"""Rule finetune_sad: per-subject fine-tuning of the pretrained SAD (resumes from its state folder)."""

import torch

from semvideo_core.logs import log_to_file
from semvideo_core.sad_stage import finetune_sad, stage_config

with log_to_file(snakemake.log[0]):
    torch.set_num_threads(snakemake.threads)
    finetune_sad(
        snakemake.input.pretrained,
        snakemake.input.fmri,
        snakemake.input.embeds,
        stage_config(snakemake.params.sad),
        snakemake.output.weights,
        snakemake.params.state,
    )
