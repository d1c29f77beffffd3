"""Rule train_mad: multi-subject MAD pretraining (resumes from its state folder)."""

from semvideo_core.config import with_checkpointing
from semvideo_core.logs import log_to_file
from semvideo_core.stages.mad import train_mad
from semvideo_core.threads import confine_threads

with log_to_file(snakemake.log[0], threads=snakemake.threads), confine_threads(snakemake.threads):
    settings = {
        k: snakemake.params[k]
        for k in (
            "model",
            "loss",
            "motion",
            "val_fraction",
            "val_block",
            "select_best",
            "init",
            "ridge_alphas",
        )
    }
    settings["pretrain"] = with_checkpointing(snakemake.params.pretrain, snakemake.config["mad"]["pretrain"])
    train_mad(
        list(snakemake.input.fmri),
        snakemake.input.latents,
        snakemake.input.motion,
        settings,
        snakemake.output.weights,
        snakemake.params.state,
        decoded_paths=list(snakemake.input.decoded),
    )
