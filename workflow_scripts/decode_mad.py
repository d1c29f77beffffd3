"""Rule decode_mad: one subject's test-clip latents and motion frames for one variant (the oracle's: once)."""

from semvideo_core.logs import log_to_file
from semvideo_core.stages.mad import decode_mad
from semvideo_core.threads import confine_threads

with log_to_file(snakemake.log[0], threads=snakemake.threads), confine_threads(snakemake.threads):
    inputs = {
        k: snakemake.input[k]
        for k in ("model", "sad_motion", "motion", "train_latents", "test_latents")
        if k in snakemake.input.keys()
    }
    decode_mad(
        snakemake.wildcards.variant,
        snakemake.input.fmri if "fmri" in snakemake.input.keys() else None,  # the oracle reads no fMRI
        snakemake.params.vae,
        inputs,
        snakemake.params.decode,
        snakemake.output.latents,
        snakemake.output.frames,
    )
