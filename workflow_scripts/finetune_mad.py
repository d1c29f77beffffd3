"""Rule finetune_mad: per-subject MAD fine-tuning (resumes from its state folder)."""

from semvideo_core.config import with_checkpointing
from semvideo_core.logs import log_to_file
from semvideo_core.stages.mad import finetune_mad
from semvideo_core.threads import confine_threads

with log_to_file(snakemake.log[0], threads=snakemake.threads), confine_threads(snakemake.threads):
    settings = {k: snakemake.params[k] for k in ("loss", "motion", "select_best", "calibrate")}
    settings["finetune"] = with_checkpointing(snakemake.params.finetune, snakemake.config["mad"]["finetune"])
    decoded = list(snakemake.input.decoded)
    finetune_mad(
        snakemake.input.pretrained,
        snakemake.input.fmri,
        snakemake.input.latents,
        snakemake.input.motion,
        settings,
        snakemake.output.weights,
        snakemake.params.state,
        decoded_path=decoded[0] if decoded else None,
    )
